/*
 * jscan: is JSON text already in the form ferry stores (jansson's compact
 * writing)?  See jscan.h.
 *
 * One pass, no recursion: an explicit stack of open objects and arrays
 * (at most JSCAN_MAX_DEPTH), and for the open objects the keys seen so
 * far, so that a repeated key (which jansson refuses) answers no.  Keys
 * are compared as written: a string has one written form here (only
 * jansson's own escapes are accepted), so equal text is equal keys.
 */
#include "autoconfig.h"

#include <errno.h>
#include <string.h>

#include "jscan.h"

/* The keys of all open objects together, beyond which the answer is no. */
#define JSCAN_KEYS_OPEN	256

struct jscan_frame {
	char	close;		/* '}' or ']' */
	int	first_key;	/* this object's first key in keys[] */
};

struct jscan_key {
	size_t	off, len;
};

/* The length of the UTF-8 sequence at s (valid as jansson checks it:
 * no overlong form, no surrogate, nothing above U+10FFFF), or 0. */
static size_t
jscan_utf8(const unsigned char *s, size_t len)
{
	unsigned int cp;
	size_t n, i;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n > len)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

int
jscan_string(const char *s, size_t len, size_t *ret_len, int *ret_plain)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 1, n;
	int plain = 1;

	if (s == NULL || ret_len == NULL)
		return -EINVAL;
	if (len == 0 || u[0] != '"')
		return -ENOTSUP;
	while (i < len) {
		if (u[i] == '"') {
			*ret_len = i + 1;
			if (ret_plain != NULL)
				*ret_plain = plain;
			return 0;
		}
		if (u[i] == '\\') {
			/* Only the escapes jansson writes; it writes \u only
			 * for other control characters, left to jansson. */
			if (i + 1 >= len || strchr("\"\\bfnrt", u[i + 1]) ==
			    NULL || u[i + 1] == '\0')
				return -ENOTSUP;
			plain = 0;
			i += 2;
		} else if (u[i] < 0x20)
			return -ENOTSUP;
		else if (u[i] < 0x80)
			i++;
		else if ((n = jscan_utf8(u + i, len - i)) == 0)
			return -ENOTSUP;
		else
			i += n;
	}
	return -ENOTSUP;
}

int
jscan_int(const char *s, size_t len, size_t *ret_len, long long *ret_value)
{
	size_t i = 0, digits;
	long long v = 0;
	int neg = 0;

	if (s == NULL || ret_len == NULL)
		return -EINVAL;
	if (i < len && s[i] == '-')
		neg = 1, i++;
	if (i >= len || s[i] < '0' || s[i] > '9')
		return -ENOTSUP;
	for (digits = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
		if (++digits > 18)
			return -ENOTSUP;
		v = v * 10 + (s[i] - '0');
	}
	/* 0 alone (jansson refuses 01 and writes -0 as 0); no fraction or
	 * exponent (a real: left to jansson). */
	if ((s[neg] == '0' && (digits > 1 || neg)) ||
	    (i < len && (s[i] == '.' || s[i] == 'e' || s[i] == 'E')))
		return -ENOTSUP;
	*ret_len = i;
	if (ret_value != NULL)
		*ret_value = neg ? -v : v;
	return 0;
}

/* Is the string at s+off (n bytes) a key the current object has? */
static int
jscan_key_seen(const char *s, const struct jscan_key *keys, int first,
    int nkeys, size_t off, size_t n)
{
	int k;

	for (k = first; k < nkeys; k++)
		if (keys[k].len == n && memcmp(s + keys[k].off, s + off, n) ==
		    0)
			return 1;
	return 0;
}

int
jscan_compact(const char *s, size_t len, int max_depth, size_t *ret_len,
    int *ret_depth)
{
	struct jscan_frame stack[JSCAN_MAX_DEPTH];
	struct jscan_key keys[JSCAN_KEYS_OPEN];
	struct jscan_frame *top;
	const char *lit;
	size_t i = 0, n;
	int depth = 0, deepest = 0, nkeys = 0;

	if (s == NULL || max_depth < 0 || max_depth > JSCAN_MAX_DEPTH)
		return -EINVAL;
value:
	if (i >= len)
		return -ENOTSUP;
	switch (s[i]) {
	case '{':
	case '[':
		if (depth == max_depth)
			return -ENOTSUP;
		top = &stack[depth++];
		if (depth > deepest)
			deepest = depth;
		top->close = s[i] == '{' ? '}' : ']';
		top->first_key = nkeys;
		i++;
		if (i < len && s[i] == top->close) {
			i++;
			depth--;
			goto after;
		}
		if (top->close == '}')
			goto key;
		goto value;
	case '"':
		if (jscan_string(s + i, len - i, &n, NULL) < 0)
			return -ENOTSUP;
		i += n;
		goto after;
	case 't':
	case 'f':
	case 'n':
		lit = s[i] == 't' ? "true" : s[i] == 'f' ? "false" : "null";
		n = strlen(lit);
		if (len - i < n || memcmp(s + i, lit, n) != 0)
			return -ENOTSUP;
		i += n;
		goto after;
	default:
		if (jscan_int(s + i, len - i, &n, NULL) < 0)
			return -ENOTSUP;
		i += n;
		goto after;
	}
key:
	top = &stack[depth - 1];
	if (jscan_string(s + i, len - i, &n, NULL) < 0 ||
	    nkeys - top->first_key >= JSCAN_MAX_KEYS ||
	    nkeys >= JSCAN_KEYS_OPEN ||
	    jscan_key_seen(s, keys, top->first_key, nkeys, i, n))
		return -ENOTSUP;
	keys[nkeys].off = i;
	keys[nkeys].len = n;
	nkeys++;
	i += n;
	if (i >= len || s[i] != ':')
		return -ENOTSUP;
	i++;
	goto value;
after:
	if (depth == 0) {
		if (ret_len != NULL)
			*ret_len = i;
		if (ret_depth != NULL)
			*ret_depth = deepest;
		return 0;
	}
	top = &stack[depth - 1];
	if (i >= len)
		return -ENOTSUP;
	if (s[i] == ',') {
		i++;
		if (top->close == '}')
			goto key;
		goto value;
	}
	if (s[i] != top->close)
		return -ENOTSUP;
	i++;
	nkeys = top->first_key;
	depth--;
	goto after;
}
