#!/usr/bin/env bash
# lint.sh -- tocsin's style checks: `make lint` (all), `make lint-src`, `make lint-size`, `make lint-format`.
#
#   tools/lint.sh [--src | --format | --size] [FILE...]
#
# --src    checksrc-style rules on every .c/.h (one line per finding, FILE:LINE: rule: text):
#          role     the file opens with its one-line role comment, "/* <file name> -- ..."
#          banned   atoi/atol/atoll/sprintf/vsprintf/strcpy/strcat/gets outside tests/
#                   (core/num.h parses strictly; snprintf / buf_t write with a cap)
#          blank    no trailing blanks
#          length   no code line over LINT_MAX_COLS (default 120) columns, tabs at 8; a line
#                   holding a string literal or a comment is left to the reader (the formatter
#                   breaks neither: BreakStringLiterals and ReflowComments are off)
# --format clang-format --dry-run -Werror with the root .clang-format
# --size   production code (not tests/, not bench/) stays readable in pieces, one line per finding
#          FILE:FUNCTION:LINES: (the tree is clang-formatted, so a function is a line starting
#          with "{" at column 0 after its signature, to the next "}" at column 0, counted from
#          the signature's first line):
#          function  no function over LINT_MAX_FN_LINES (default 120) lines
#          file      no .c/.h over LINT_MAX_FILE_LINES (default 1200) lines (FUNCTION is "(file)")
# (none)   all three, after tools/lint_test.sh (the checks catch their fixtures); the exit
#          status is 1 when anything was found.
# FILEs default to every tracked .c/.h except generated ones (tracker/dash.c, from dash.html).
set -u -o pipefail
cd "$(dirname "$0")/.." || exit 2
mode=all
case "${1:-}" in
--src) mode=src; shift ;;
--format) mode=format; shift ;;
--size) mode=size; shift ;;
-h|--help) sed -n '2,23p' "$0"; exit 0 ;;
esac
GENERATED='^tracker/dash\.c$'
if [ $# -gt 0 ]; then
	files=("$@")
else
	mapfile -t files < <(git ls-files '*.c' '*.h' | grep -Ev "$GENERATED")
fi
[ ${#files[@]} -gt 0 ] || { echo "lint: no files"; exit 2; }
max=${LINT_MAX_COLS:-120}
rc=0

if [ "$mode" = all ]; then
	tools/lint_test.sh || exit 2
fi

if [ "$mode" = all ] || [ "$mode" = src ]; then
	awk -v max="$max" '
	function report(rule, text) { printf "%s:%d: %s: %s\n", FILENAME, FNR, rule, text; bad = 1 }
	FNR == 1 {
		n = split(FILENAME, parts, "/"); base = parts[n]
		prod = FILENAME !~ /^tests\//
		if (index($0, "/* " base " -- ") != 1)
			report("role", "the file must open with \"/* " base " -- <what it is for> */\"")
	}
	/[ \t]$/ { report("blank", "trailing blank") }
	{
		line = $0
		# code only: drop string and char literals and comments before looking for calls
		code = line
		gsub(/\\./, "", code)
		gsub(/"[^"]*"/, "\"\"", code)
		gsub(/'\''[^'\'']*'\''/, "0", code)
		sub(/\/\/.*/, "", code)
		gsub(/\/\*([^*]|\*[^\/])*\*\//, "", code)
		sub(/\/\*.*/, "", code)
		if (code ~ /^[ \t]*\*/)
			code = ""
		if (prod && match(code, /(^|[^A-Za-z0-9_.>])(atoi|atol|atoll|sprintf|vsprintf|strcpy|strcat|gets)[ \t]*\(/)) {
			fn = substr(code, RSTART, RLENGTH); sub(/^[^A-Za-z]/, "", fn); sub(/[ \t]*\($/, "", fn)
			report("banned", fn "() (core/num.h parsers, snprintf, buf_t)")
		}
		# columns with tabs at 8
		cols = 0
		for (i = 1; i <= length(line); i++) {
			c = substr(line, i, 1)
			if (c == "\t") cols += 8 - cols % 8; else cols++
		}
		if (cols > max && line !~ /"/ && line !~ /\/\*|\/\/|^[ \t]*\*/)
			report("length", cols " columns (at most " max ")")
	}
	END { exit bad }
	' "${files[@]}" || rc=1
fi

if [ "$mode" = all ] || [ "$mode" = size ]; then
	awk -v maxfn="${LINT_MAX_FN_LINES:-120}" -v maxfile="${LINT_MAX_FILE_LINES:-1200}" '
	function report(f, fn, lines, text) { printf "%s:%s:%d: %s\n", f, fn, lines, text; bad = 1 }
	function file_done() {
		if (prod && last > maxfile)
			report(file, "(file)", last, "file over " maxfile " lines")
	}
	FNR == 1 {
		if (NR > 1) { file_done() }
		file = FILENAME
		prod = file !~ /^(tests|bench)\//
		infn = 0; sig = 0; sigtext = ""
	}
	{ last = FNR }
	!prod { next }
	infn && /^}/ {
		infn = 0
		if (FNR - start + 1 > maxfn)
			report(file, name, FNR - start + 1, "function over " maxfn " lines (lines " start "-" FNR ")")
		next
	}
	infn { next }
	# a signature starts at column 0 with a name (a label "out:" never stands outside a function)
	/^[A-Za-z_]/ { sig = FNR; sigtext = $0; next }
	/^{/ && sig {
		infn = 1; start = sig
		name = sigtext; sub(/\(.*/, "", name); sub(/.*[^A-Za-z0-9_]/, "", name)
		next
	}
	sig && /^[ \t]/ { sigtext = sigtext " " $0; next }
	{ sig = 0; sigtext = "" }
	END { if (NR > 0) file_done(); exit bad }
	' "${files[@]}" || rc=1
fi

if [ "$mode" = all ] || [ "$mode" = format ]; then
	if ! command -v clang-format > /dev/null; then
		echo "lint: clang-format is missing (make deps installs it)"; exit 2
	fi
	# one line per file: how many places clang-format would change
	clang-format --style=file --dry-run "${files[@]}" 2>&1 |
		awk -F: '/: (warning|error): code should be clang-formatted/ { n[$1]++ }
		     END { for (f in n) { printf "%s: format: %d place(s) differ from .clang-format (clang-format -i %s)\n", f, n[f], f; bad = 1 }
		           exit bad }' | sort || rc=1
fi
[ $rc = 0 ] && echo "lint: ${#files[@]} files clean ($mode)"
exit $rc
