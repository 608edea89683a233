/* near.c -- "did you mean": edit distance between a mistyped name and the known ones. */
#include "core/near.h"

#include <string.h>

#define NEAR_MAX 64

static int min3(int a, int b, int c) { return a < b ? (a < c ? a : c) : (b < c ? b : c); }

int near_dist(const char *a, const char *b)
{
	size_t la = strnlen(a, NEAR_MAX), lb = strnlen(b, NEAR_MAX);
	int d[NEAR_MAX + 1][NEAR_MAX + 1];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = (int)i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = (int)j;
	for (size_t i = 1; i <= la; i++)
		for (size_t j = 1; j <= lb; j++) {
			int cost = a[i - 1] != b[j - 1];
			d[i][j] = min3(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < d[i][j])
				d[i][j] = d[i - 2][j - 2] + 1;
		}
	return d[la][lb];
}

void near_init(near_t *n, const char *word)
{
	n->word = word;
	n->best = NULL;
	n->dist = 1 << 30;
}

void near_offer(near_t *n, const char *cand)
{
	int d = near_dist(n->word, cand);
	if (d < n->dist) {
		n->dist = d;
		n->best = cand;
	}
}

const char *near_best(const near_t *n)
{
	int len = (int)strnlen(n->word, NEAR_MAX);
	if (!n->best || n->dist == 0)
		return NULL;
	return n->dist <= 2 || n->dist * 3 <= len ? n->best : NULL;
}
