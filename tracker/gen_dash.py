#!/usr/bin/env python3
# gen_dash.py -- regenerate tracker/dash.c from tracker/dash.html and tracker/webpage.c from
# tracker/webpage.html (run from anywhere).
import os
here = os.path.dirname(os.path.abspath(__file__))

def gen(src, dst, var, header, what):
    html = open(os.path.join(here, src)).read()
    out = ['/* %s -- %s (generated from tracker/%s; edit that, then regenerate). */' % (dst, what, src),
           '#include "%s"' % header, '', 'const char %s[] =' % var]
    for line in html.split('\n'):
        out.append('    "' + line.replace('\\', '\\\\').replace('"', '\\"') + '\\n"')
    out[-1] += ';'
    open(os.path.join(here, dst), 'w').write('\n'.join(out) + '\n')

gen('dash.html', 'dash.c', 'trk_dashboard_html', 'tracker/api.h', 'the dashboard page served at GET /')
gen('webpage.html', 'webpage.c', 'trk_web_page_html', 'tracker/web_int.h',
    'the compose-and-launch page served at GET /send')
