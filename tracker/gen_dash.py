#!/usr/bin/env python3
# gen_dash.py -- regenerate tracker/dash.c from tracker/dash.html (run from the repo root).
import os
here = os.path.dirname(os.path.abspath(__file__))
html = open(os.path.join(here, 'dash.html')).read()
out = ['/* dash.c -- the dashboard page served at GET / (generated from tracker/dash.html; edit that, then regenerate). */',
       '#include "tracker/api.h"', '', 'const char trk_dashboard_html[] =']
for line in html.split('\n'):
    out.append('    "' + line.replace('\\', '\\\\').replace('"', '\\"') + '\\n"')
out[-1] += ';'
open(os.path.join(here, 'dash.c'), 'w').write('\n'.join(out) + '\n')
