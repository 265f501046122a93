/*
 * vl_frame: varlink message parsing and encoding; see vl_frame.h.
 * Nothing here blocks, logs or keeps state between calls.
 */
#include "autoconfig.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vl_frame.h"

void
vl_msg_clear(struct vl_msg *m)
{
	if (m == NULL)
		return;
	json_decref(m->msg);
	memset(m, 0, sizeof *m);
}

/* Does the JSON number at s overflow what jansson holds, as jansson
 * decides it (strtoll for integers, strtod for the rest)?  *ret_real
 * says which it is. */
static bool
number_overflows(const char *s, bool *ret_real)
{
	const char *q;
	bool real = false;
	double d;

	for (q = s; *q != '\0' && strchr("-+0123456789.eE", *q) != NULL; q++)
		if (*q == '.' || *q == 'e' || *q == 'E')
			real = true;
	*ret_real = real;
	errno = 0;
	if (!real) {
		(void)strtoll(s, NULL, 10);
		return errno == ERANGE;
	}
	d = strtod(s, NULL);
	return errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL);
}

/*
 * jansson fails a whole text for one number it cannot hold.  Parse a copy
 * of buf in which every such number (outside strings) reads 0, or 0.0 if
 * it was not an integer (so that its JSON type stays), and find
 * the first one that is inside the top-level "parameters" object: its
 * key there, as a JSON string, goes to *ret_key (NULL if none was).
 * Returns the copy's tree, or NULL with jerr set if it fails for another
 * reason too.  Linear in len; runs only when a parse already failed so.
 */
static json_t *
parse_overflowed(const char *buf, size_t len, json_error_t *jerr,
    json_t **ret_key)
{
	const char *key1 = NULL, *key2 = NULL, *first = NULL;
	size_t i, end, key1_len = 0, key2_len = 0, first_len = 0;
	bool obj[3] = { false }, want_key[3] = { false }, in_params = false;
	bool real;
	json_t *root;
	int depth = 0;
	char *copy;

	*ret_key = NULL;
	if ((copy = malloc(len + 1)) == NULL)
		return NULL;
	memcpy(copy, buf, len);
	copy[len] = '\0';
	for (i = 0; i < len; i = end) {
		end = i + 1;
		switch (copy[i]) {
		case '"':
			while (end < len && copy[end] != '"')
				end += copy[end] == '\\' ? 2 : 1;
			end++;
			if (depth < 1 || depth > 2 || !obj[depth] ||
			    !want_key[depth])
				break;
			want_key[depth] = false;
			if (depth == 1) {
				key1 = copy + i;
				key1_len = end - i;
			} else {
				key2 = copy + i;
				key2_len = end - i;
			}
			break;
		case '{':
		case '[':
			if (++depth > 2 || depth < 1)
				break;
			obj[depth] = want_key[depth] = copy[i] == '{';
			if (depth == 2) {
				key2 = NULL;
				in_params = obj[1] && obj[2] &&
				    key1_len == sizeof "\"parameters\"" - 1 &&
				    memcmp(key1, "\"parameters\"", key1_len) == 0;
			}
			break;
		case '}':
		case ']':
			depth--;
			break;
		case ',':
			if (depth >= 1 && depth <= 2 && obj[depth])
				want_key[depth] = true;
			break;
		default:
			if (copy[i] != '-' && (copy[i] < '0' || copy[i] > '9'))
				break;
			while (end < len &&
			    strchr("-+0123456789.eE", copy[end]) != NULL)
				end++;
			if (!number_overflows(copy + i, &real))
				break;
			if (first == NULL && depth >= 2 && in_params &&
			    key2 != NULL) {
				first = key2;
				first_len = key2_len;
			}
			/* A real that overflows has 5 characters or more
			 * (1e309): room for 0.0. */
			real = real && end - i >= 3;
			memset(copy + i, ' ', end - i);
			memcpy(copy + i, real ? "0.0" : "0", real ? 3 : 1);
			break;
		}
	}
	if (first != NULL)
		*ret_key = json_loadb(first, first_len, JSON_DECODE_ANY, NULL);
	root = json_loadb(copy, len, JSON_REJECT_DUPLICATES, jerr);
	free(copy);
	return root;
}

int
vl_msg_parse(const char *buf, size_t len, struct vl_msg *ret,
    const char **ret_error, const char **ret_param, char *errtext,
    size_t errtext_len)
{
	static const char invalid[] = "org.varlink.service.InvalidParameter";
	json_t *root, *v, *overflow = NULL;
	json_error_t jerr;
	struct vl_msg m;
	const char *key;

	memset(&m, 0, sizeof m);
	*ret_error = invalid;
	*ret_param = "message";
	if (len > VL_MESSAGE_MAX) {
		snprintf(errtext, errtext_len, "message of %zu bytes exceeds "
		    "the limit of %u", len, VL_MESSAGE_MAX);
		return -EMSGSIZE;
	}
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL &&
	    json_error_code(&jerr) == json_error_numeric_overflow)
		root = parse_overflowed(buf, len, &jerr, &overflow);
	if (root == NULL) {
		snprintf(errtext, errtext_len, "invalid JSON at byte %d: %s",
		    jerr.position, jerr.text);
		json_decref(overflow);
		return -EINVAL;
	}
	m.msg = root;
	if (!json_is_object(root)) {
		snprintf(errtext, errtext_len, "message is not a JSON object");
		goto invalid;
	}
	json_object_foreach(root, key, v) {
		if (strcmp(key, "method") == 0) {
			if (!json_is_string(v) || json_string_length(v) == 0) {
				*ret_param = "method";
				snprintf(errtext, errtext_len,
				    "method must be a non-empty string");
				goto invalid;
			}
			m.method = json_string_value(v);
		} else if (strcmp(key, "parameters") == 0) {
			if (json_is_null(v))
				continue;	/* as if absent */
			if (!json_is_object(v)) {
				*ret_param = "parameters";
				snprintf(errtext, errtext_len,
				    "parameters must be an object");
				goto invalid;
			}
			m.params = v;
		} else if (strcmp(key, "more") == 0 ||
		    strcmp(key, "oneway") == 0 ||
		    strcmp(key, "upgrade") == 0) {
			if (!json_is_boolean(v)) {
				*ret_param = key[0] == 'm' ? "more" :
				    key[0] == 'o' ? "oneway" : "upgrade";
				snprintf(errtext, errtext_len,
				    "%s must be a boolean", key);
				goto invalid;
			}
			if (key[0] == 'm')
				m.more = json_is_true(v);
			else if (key[0] == 'o')
				m.oneway = json_is_true(v);
			else if (json_is_true(v)) {
				*ret_param = "upgrade";
				snprintf(errtext, errtext_len,
				    "connection upgrade is not supported");
				goto invalid;
			}
		}
		/* Other keys are ignored, as varlink asks of receivers. */
	}
	if (m.method == NULL) {
		*ret_param = "method";
		snprintf(errtext, errtext_len, "message has no method");
		goto invalid;
	}
	if (m.more && m.oneway) {
		*ret_param = "oneway";
		snprintf(errtext, errtext_len,
		    "more and oneway cannot both be set");
		goto invalid;
	}
	if (m.params == NULL) {
		if ((m.params = json_object()) == NULL ||
		    json_object_set_new(root, "parameters", m.params) < 0) {
			json_decref(root);
			json_decref(overflow);
			return -ENOMEM;
		}
	}
	/* The key as the tree holds it: it lives as long as the message. */
	if (overflow != NULL)
		m.overflow = json_object_iter_key(json_object_iter_at(m.params,
		    json_string_value(overflow)));
	json_decref(overflow);
	*ret = m;
	return 0;
invalid:
	json_decref(root);
	json_decref(overflow);
	return -EINVAL;
}

static int
vl_encode(json_t *obj, char **ret, size_t *ret_len)
{
	size_t n;
	char *buf;

	n = json_dumpb(obj, NULL, 0, JSON_COMPACT);
	if (n == 0 || (buf = malloc(n + 1)) == NULL)
		return -ENOMEM;
	if (json_dumpb(obj, buf, n, JSON_COMPACT) != n) {
		free(buf);
		return -ENOMEM;
	}
	buf[n] = '\0';
	*ret = buf;
	*ret_len = n + 1;
	return 0;
}

int
vl_encode_reply(json_t *params, bool continues, char **ret, size_t *ret_len)
{
	json_t *obj;
	int r;

	obj = json_pack("{sO*}", "parameters", params);
	if (obj == NULL)
		return -ENOMEM;
	if (params == NULL && json_object_set_new(obj, "parameters",
	    json_object()) < 0)
		r = -ENOMEM;
	else if (continues && json_object_set_new(obj, "continues",
	    json_true()) < 0)
		r = -ENOMEM;
	else
		r = vl_encode(obj, ret, ret_len);
	json_decref(obj);
	return r;
}

int
vl_encode_error(const char *name, json_t *params, char **ret, size_t *ret_len)
{
	json_t *obj;
	int r;

	obj = params != NULL ?
	    json_pack("{s:s,s:O}", "error", name, "parameters", params) :
	    json_pack("{s:s,s:{}}", "error", name, "parameters");
	if (obj == NULL)
		return -ENOMEM;
	r = vl_encode(obj, ret, ret_len);
	json_decref(obj);
	return r;
}

int
vl_method_split(const char *method, char *iface, size_t iface_len,
    const char **ret_member)
{
	const char *dot;
	size_t n;

	dot = strrchr(method, '.');
	if (dot == NULL || dot == method || dot[1] == '\0')
		return -EINVAL;
	n = (size_t)(dot - method);
	if (n >= iface_len)
		return -EINVAL;
	memcpy(iface, method, n);
	iface[n] = '\0';
	*ret_member = dot + 1;
	return 0;
}
