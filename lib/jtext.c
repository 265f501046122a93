/*
 * jtext: see jtext.h.  Every scan below relies on jansson having accepted
 * the text already, so it only needs to tell strings from structure: a
 * string runs from a quote to the next quote not preceded by a backslash
 * escape, and brackets nest.  Bounds are checked at every step anyway.
 */
#include "autoconfig.h"

#include <errno.h>
#include <string.h>

#include "jtext.h"

static const char *
skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' ||
	    *p == '\r'))
		p++;
	return p;
}

/* p is at a quote: return just past the closing quote, or NULL. */
static const char *
skip_string(const char *p, const char *end)
{
	const char *q;

	/* The usual string has no escape: two memchr calls settle it. */
	q = memchr(p + 1, '"', (size_t)(end - p - 1));
	if (q != NULL && memchr(p + 1, '\\', (size_t)(q - p - 1)) == NULL)
		return q + 1;
	for (p++; p < end; p++) {
		if (*p == '"')
			return p + 1;
		if (*p == '\\')
			p++;
	}
	return NULL;
}

/* Return just past the value starting at p, or NULL. */
static const char *
skip_value(const char *p, const char *end)
{
	int depth = 0;

	if (p >= end)
		return NULL;
	if (*p == '"')
		return skip_string(p, end);
	if (*p != '{' && *p != '[') {
		/* A number or a literal: up to the next delimiter. */
		while (p < end && strchr(",}] \t\n\r", *p) == NULL)
			p++;
		return p;
	}
	while (p < end) {
		switch (*p) {
		case '"':
			if ((p = skip_string(p, end)) == NULL)
				return NULL;
			continue;
		case '{':
		case '[':
			depth++;
			break;
		case '}':
		case ']':
			if (--depth == 0)
				return p + 1;
			break;
		}
		p++;
	}
	return NULL;
}

int
jtext_member(const char *text, size_t len, const char *key,
    const char **ret, size_t *ret_len)
{
	const char *p, *end = text + len, *name, *v;
	size_t klen = strlen(key), nlen;

	p = skip_ws(text, end);
	if (p == end || *p != '{')
		return -EINVAL;
	p = skip_ws(p + 1, end);
	if (p < end && *p == '}')
		return -ENOENT;
	while (p < end && *p == '"') {
		name = p + 1;
		if ((p = skip_string(p, end)) == NULL)
			return -EINVAL;
		nlen = (size_t)(p - 1 - name);
		p = skip_ws(p, end);
		if (p == end || *p != ':')
			return -EINVAL;
		v = skip_ws(p + 1, end);
		if ((p = skip_value(v, end)) == NULL)
			return -EINVAL;
		/* Duplicate names were refused by the parser: the first
		 * match is the member. */
		if (nlen == klen && memcmp(name, key, klen) == 0) {
			*ret = v;
			*ret_len = (size_t)(p - v);
			return 0;
		}
		p = skip_ws(p, end);
		if (p == end || *p != ',')
			break;
		p = skip_ws(p + 1, end);
	}
	return -ENOENT;
}

bool
jtext_is_compact(const char *text, size_t len)
{
	const char *p = text, *end = text + len, *num, *q;

	while (p < end) {
		switch (*p) {
		case '"':
			/* Any escape may be one jansson writes differently
			 * (\u0041, \/): only escape-free strings count. */
			q = memchr(p + 1, '"', (size_t)(end - p - 1));
			if (q == NULL || memchr(p + 1, '\\',
			    (size_t)(q - p - 1)) != NULL)
				return false;
			p = q + 1;
			break;
		case '{': case '}': case '[': case ']': case ':': case ',':
			p++;
			break;
		case 't':
		case 'n':
			if (end - p < 4 || memcmp(p, *p == 't' ? "true" :
			    "null", 4) != 0)
				return false;
			p += 4;
			break;
		case 'f':
			if (end - p < 5 || memcmp(p, "false", 5) != 0)
				return false;
			p += 5;
			break;
		case '-':
		case '0': case '1': case '2': case '3': case '4':
		case '5': case '6': case '7': case '8': case '9':
			/* An integer is written back as it came, except -0;
			 * a real (fraction or exponent) is reformatted. */
			num = p;
			if (*p == '-')
				p++;
			if (p == end || *p < '0' || *p > '9')
				return false;
			if (*p == '0' && p != num)
				return false;
			while (p < end && *p >= '0' && *p <= '9')
				p++;
			if (p < end && (*p == '.' || *p == 'e' || *p == 'E'))
				return false;
			break;
		default:
			/* Whitespace between tokens, or anything else. */
			return false;
		}
	}
	return true;
}
