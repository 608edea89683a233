# web-lib.sh -- what the send page's API tests (0331, 0332) share: one call and its check.
# Source it after lib.sh; $A is the tracker's base URL, $OUT the test's directory.

# code METHOD PATH TOKEN [CURL ARGS...]: the HTTP status; the body in $OUT/body
code() {
  local m=$1 p=$2 t=$3; shift 3
  curl -s -o "$OUT/body" -w '%{http_code}' -X "$m" ${t:+-H "Authorization: Bearer $t"} "$@" "$A$p"
}
# want STATUS REGEX WHAT -- after got=$(code ...): the status is STATUS and the body matches
want() {
  [ "$1" = "$got" ] && grep -Eq "$2" "$OUT/body" || it_fail "$3: $got $(cat "$OUT/body")"
  echo "ok: $3 -> $got $(head -c 300 "$OUT/body")"
}
