/* near.h -- "did you mean": the closest of a set of names to a mistyped one. */
#ifndef TOCSIN_NEAR_H
#define TOCSIN_NEAR_H
#include <stddef.h>

/* Offer candidates one at a time, then ask for the closest. Plain data on the
 * caller's stack; borrows word and every candidate until near_best(). Any thread. */
typedef struct near {
	const char *word;
	const char *best; /* closest candidate so far, or NULL */
	int dist;         /* its edit distance (insert, delete, substitute, swap neighbours) */
} near_t;

void near_init(near_t *n, const char *word);
void near_offer(near_t *n, const char *cand);
/* The closest candidate when it is close enough to be a likely typo (at most 2
 * edits, or a third of the word's length), else NULL. */
const char *near_best(const near_t *n);
/* Edit distance of a and b (optimal string alignment), capped at 64 characters each. */
int near_dist(const char *a, const char *b);

#endif
