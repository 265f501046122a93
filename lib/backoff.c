/*
 * backoff: full-jitter exponential backoff; see backoff.h.
 */
#include "autoconfig.h"

#include <sodium.h>

#include "backoff.h"

void
backoff_init(struct backoff *b, int64_t base_ms, int64_t cap_ms)
{
	b->base_ms = base_ms > 0 ? base_ms : 1;
	b->cap_ms = cap_ms >= b->base_ms ? cap_ms : b->base_ms;
	b->attempt = 0;
}

int64_t
backoff_ceiling(const struct backoff *b)
{
	int64_t c = b->base_ms;
	int i;

	for (i = 0; i < b->attempt && c < b->cap_ms; i++)
		c *= 2;
	return c < b->cap_ms ? c : b->cap_ms;
}

int64_t
backoff_next(struct backoff *b)
{
	int64_t ceiling;

	ceiling = backoff_ceiling(b);
	if (b->attempt < 62)
		b->attempt++;
	/* Uniform in [0, ceiling]; ceilings fit 32 bits (cap is minutes). */
	if (ceiling >= (int64_t)UINT32_MAX)
		ceiling = UINT32_MAX - 1;
	return (int64_t)randombytes_uniform((uint32_t)ceiling + 1);
}

void
backoff_reset(struct backoff *b)
{
	b->attempt = 0;
}
