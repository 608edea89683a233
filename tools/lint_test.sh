#!/usr/bin/env bash
# lint_test.sh -- tools/lint.sh --size against fixtures it must fail and pass (run by tools/lint.sh).
#
# Writes, in a temporary directory: a function of 121 lines (signature on two lines), one of
# exactly 120, a file of 1,201 lines and one of 1,200, then checks that lint.sh --size names
# exactly the long function and the long file, as FILE:FUNCTION:LINES, and exits 1; and that
# the fixtures at the limits alone pass.
set -u -o pipefail
cd "$(dirname "$0")/.." || exit 2
unset LINT_MAX_FN_LINES LINT_MAX_FILE_LINES # the defaults are what is tested
t=$(mktemp -d) || exit 2
trap 'rm -rf "$t"' EXIT

body() { for _ in $(seq "$1"); do printf '\tx++;\n'; done; }
{
	printf '/* fns.c -- fixture */\n'
	printf 'static int too_long(int a,\n                    int b)\n{\n\tint x = a + b;\n'
	body 115
	printf '\treturn x;\n}\n\n'                         # 2 + 1 + 1 + 115 + 2 = 121 lines
	printf 'int at_limit(void)\n{\n\tint x = 0;\n'
	body 114
	printf 'out:\n\treturn x;\n}\n'                     # 1 + 1 + 1 + 114 + 3 = 120 lines
} > "$t/fns.c"
{ printf '/* big.c -- fixture */\n'; for i in $(seq 1200); do printf 'int v%d;\n' "$i"; done; } > "$t/big.c"
head -n 1200 "$t/big.c" > "$t/full.c"

fail() { echo "lint_test: $*"; exit 1; }
got=$(tools/lint.sh --size "$t/fns.c" "$t/big.c" "$t/full.c"); rc=$?
want="$t/fns.c:too_long:121: function over 120 lines (lines 2-122)
$t/big.c:(file):1201: file over 1200 lines"
[ "$rc" = 1 ] || fail "--size exited $rc on the long fixtures (want 1)"
[ "$got" = "$want" ] || fail "--size said
$got
want
$want"
sed -n '1p;124,$p' "$t/fns.c" > "$t/ok.c"
got=$(tools/lint.sh --size "$t/ok.c" "$t/full.c") || fail "--size refused the fixtures at the limits: $got"
exit 0
