/*
 * backoff: exponential backoff with full jitter (the "Full Jitter" of AWS's
 * analysis): the n-th consecutive failure waits a uniformly random time in
 * [0, min(cap, base * 2^n)].  Reset on success.  Randomness from libsodium.
 * No allocation, no I/O.
 */
#ifndef FERRY_BACKOFF_H
#define FERRY_BACKOFF_H

#include <stdint.h>

struct backoff {
	int64_t	base_ms;
	int64_t	cap_ms;
	int	attempt;	/* consecutive failures so far */
};

void	backoff_init(struct backoff *b, int64_t base_ms, int64_t cap_ms);
/* The delay before the next try after one more failure. */
int64_t	backoff_next(struct backoff *b);
/* The ceiling the next delay will be drawn under (for tests, Status). */
int64_t	backoff_ceiling(const struct backoff *b);
void	backoff_reset(struct backoff *b);

#endif
