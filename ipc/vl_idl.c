/*
 * vl_idl: varlink interface parsing and type checking; see vl_idl.h.
 *
 * The parser is recursive descent over the text with one cursor; a type
 * is a tree of struct vl_type, named types are resolved once the whole
 * text is read (a member may use a type defined after it).  Type nesting
 * is bounded (VL_IDL_DEPTH_MAX) so that no description can exhaust the
 * stack; checking recurses along the type and the value together, so it
 * is bounded by the type's depth, or for a recursive named type by the
 * value's, which jansson bounds when it parses.
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vl_idl.h"

#define VL_IDL_DEPTH_MAX	32

enum vl_kind {
	VK_BOOL,
	VK_INT,
	VK_FLOAT,
	VK_STRING,
	VK_OBJECT,
	VK_ARRAY,
	VK_MAP,
	VK_MAYBE,
	VK_STRUCT,
	VK_ENUM,
	VK_ALIAS,
};

struct vl_field;

struct vl_type {
	enum vl_kind		 kind;
	struct vl_type		*elem;		/* ARRAY, MAP, MAYBE */
	char			*alias;		/* ALIAS: the type's name */
	const struct vl_type	*target;	/* ALIAS: resolved */
	struct vl_field		*fields;	/* STRUCT; ENUM (no types) */
	size_t			 nfields;
};

struct vl_field {
	char		*name;
	struct vl_type	*type;		/* NULL in an enum */
};

enum vl_member_kind {
	VM_TYPE,
	VM_METHOD,
	VM_ERROR,
};

struct vl_member {
	enum vl_member_kind	 kind;
	char			*name;
	struct vl_type		*type;	/* type, error, method input */
	struct vl_type		*out;	/* method output */
};

struct vl_idl {
	char			*name;
	struct vl_member	*members;
	size_t			 nmembers;
	const char		**methods;	/* borrowed names, NULL-ended */
	size_t			 nmethods;
};

struct parser {
	const char	*text;
	const char	*p;
	char		*err;
	size_t		 err_len;
	int		 r;		/* 0, or the first failure */
};

/* --- types --- */

static void
type_free(struct vl_type *t)
{
	size_t i;

	if (t == NULL)
		return;
	type_free(t->elem);
	free(t->alias);
	for (i = 0; i < t->nfields; i++) {
		free(t->fields[i].name);
		type_free(t->fields[i].type);
	}
	free(t->fields);
	free(t);
}

void
vl_idl_free(struct vl_idl *idl)
{
	size_t i;

	if (idl == NULL)
		return;
	for (i = 0; i < idl->nmembers; i++) {
		free(idl->members[i].name);
		type_free(idl->members[i].type);
		type_free(idl->members[i].out);
	}
	free(idl->members);
	free(idl->methods);
	free(idl->name);
	free(idl);
}

/* --- parsing --- */

/* Record the first failure, with the line it happened on. */
static void
fail(struct parser *ps, const char *fmt, ...)
{
	const char *q;
	va_list ap;
	int line = 1, n;

	if (ps->r != 0)
		return;
	ps->r = -EINVAL;
	for (q = ps->text; q < ps->p; q++)
		if (*q == '\n')
			line++;
	n = snprintf(ps->err, ps->err_len, "line %d: ", line);
	if (n < 0 || (size_t)n >= ps->err_len)
		return;
	va_start(ap, fmt);
	vsnprintf(ps->err + n, ps->err_len - n, fmt, ap);
	va_end(ap);
}

static void
nomem(struct parser *ps)
{
	if (ps->r == 0) {
		ps->r = -ENOMEM;
		snprintf(ps->err, ps->err_len, "out of memory");
	}
}

/* Skip white space and comments; true if any was skipped. */
static bool
skip(struct parser *ps)
{
	const char *start = ps->p;

	for (;;) {
		if (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\r' ||
		    *ps->p == '\n')
			ps->p++;
		else if (*ps->p == '#') {
			while (*ps->p != '\0' && *ps->p != '\n')
				ps->p++;
		} else
			return ps->p != start;
	}
}

static bool
is_lower(int c)
{
	return c >= 'a' && c <= 'z';
}

static bool
is_upper(int c)
{
	return c >= 'A' && c <= 'Z';
}

static bool
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* The name at the cursor: a char first() accepts, then letters and
 * digits (and '_' if underscore); NULL if there is none. */
static char *
take(struct parser *ps, bool (*first)(int), bool underscore)
{
	const char *start = ps->p;
	char *s;

	if (!first(*ps->p))
		return NULL;
	ps->p++;
	while (is_lower(*ps->p) || is_upper(*ps->p) || is_digit(*ps->p) ||
	    (underscore && *ps->p == '_'))
		ps->p++;
	if ((s = strndup(start, (size_t)(ps->p - start))) == NULL)
		nomem(ps);
	return s;
}

/* Does the text at the cursor start with word, not followed by a name
 * character?  Then skip it. */
static bool
keyword(struct parser *ps, const char *word)
{
	size_t n = strlen(word);

	if (strncmp(ps->p, word, n) != 0 || is_lower(ps->p[n]) ||
	    is_upper(ps->p[n]) || is_digit(ps->p[n]) || ps->p[n] == '_')
		return false;
	ps->p += n;
	return true;
}

static struct vl_type *
type_new(struct parser *ps, enum vl_kind kind)
{
	struct vl_type *t;

	if ((t = calloc(1, sizeof *t)) == NULL)
		nomem(ps);
	else
		t->kind = kind;
	return t;
}

static struct vl_type *parse_type(struct parser *ps, int depth);

static bool
field_dup(const struct vl_type *t, const char *name)
{
	size_t i;

	for (i = 0; i < t->nfields; i++)
		if (strcmp(t->fields[i].name, name) == 0)
			return true;
	return false;
}

/* "(" fields or enum values ")", the cursor on the "(". */
static struct vl_type *
parse_struct(struct parser *ps, int depth)
{
	struct vl_field *f;
	struct vl_type *t;
	char *name;

	if ((t = type_new(ps, VK_STRUCT)) == NULL)
		return NULL;
	ps->p++;
	skip(ps);
	if (*ps->p == ')') {
		ps->p++;
		return t;
	}
	for (;;) {
		skip(ps);
		if ((name = take(ps, is_lower, true)) == NULL) {
			fail(ps, "expected a field name");
			break;
		}
		if (field_dup(t, name)) {
			fail(ps, "'%s' is defined twice", name);
			free(name);
			break;
		}
		f = realloc(t->fields, (t->nfields + 1) * sizeof *f);
		if (f == NULL) {
			free(name);
			nomem(ps);
			break;
		}
		t->fields = f;
		f = &t->fields[t->nfields++];
		f->name = name;
		f->type = NULL;
		skip(ps);
		if (*ps->p == ':') {
			if (t->kind == VK_ENUM) {
				fail(ps, "an enum's values have no types");
				break;
			}
			ps->p++;
			skip(ps);
			if ((f->type = parse_type(ps, depth + 1)) == NULL)
				break;
			skip(ps);
		} else if (t->nfields > 1 && t->kind == VK_STRUCT) {
			fail(ps, "field '%s' has no type", name);
			break;
		} else
			t->kind = VK_ENUM;
		if (*ps->p == ',') {
			ps->p++;
			continue;
		}
		if (*ps->p == ')') {
			ps->p++;
			return t;
		}
		fail(ps, "expected ',' or ')'");
		break;
	}
	type_free(t);
	return NULL;
}

/* A type at the cursor (no white space before it). */
static struct vl_type *
parse_type(struct parser *ps, int depth)
{
	static const struct {
		const char	*word;
		enum vl_kind	 kind;
	} simple[] = {
		{ "bool", VK_BOOL }, { "int", VK_INT }, { "float", VK_FLOAT },
		{ "string", VK_STRING }, { "object", VK_OBJECT },
	};
	struct vl_type *t;
	enum vl_kind kind;
	size_t i;

	if (depth > VL_IDL_DEPTH_MAX) {
		fail(ps, "types nested deeper than %d levels",
		    VL_IDL_DEPTH_MAX);
		return NULL;
	}
	if (*ps->p == '(')
		return parse_struct(ps, depth);
	if (*ps->p == '?' || *ps->p == '[') {
		if (*ps->p == '?')
			kind = VK_MAYBE;
		else if (strncmp(ps->p, "[]", 2) == 0)
			kind = VK_ARRAY;
		else if (strncmp(ps->p, "[string]", 8) == 0)
			kind = VK_MAP;
		else {
			fail(ps, "expected [] or [string]");
			return NULL;
		}
		ps->p += kind == VK_MAYBE ? 1 : kind == VK_ARRAY ? 2 : 8;
		if ((t = type_new(ps, kind)) == NULL)
			return NULL;
		if ((t->elem = parse_type(ps, depth + 1)) == NULL) {
			type_free(t);
			return NULL;
		}
		if (kind == VK_MAYBE && t->elem->kind == VK_MAYBE) {
			fail(ps, "?? is not a type");
			type_free(t);
			return NULL;
		}
		return t;
	}
	for (i = 0; i < sizeof simple / sizeof simple[0]; i++)
		if (keyword(ps, simple[i].word))
			return type_new(ps, simple[i].kind);
	if (is_upper(*ps->p)) {
		if ((t = type_new(ps, VK_ALIAS)) == NULL)
			return NULL;
		if ((t->alias = take(ps, is_upper, false)) == NULL) {
			type_free(t);
			return NULL;
		}
		return t;
	}
	fail(ps, "expected a type");
	return NULL;
}

/* A member's name, after at least one blank. */
static char *
member_name(struct parser *ps, const char *what)
{
	char *name;

	if (!skip(ps) || (name = take(ps, is_upper, false)) == NULL) {
		if (ps->r == 0)
			fail(ps, "expected the %s's name (A-Z first)", what);
		return NULL;
	}
	return name;
}

static struct vl_member *
member_find(const struct vl_idl *idl, const char *name)
{
	size_t i;

	for (i = 0; i < idl->nmembers; i++)
		if (strcmp(idl->members[i].name, name) == 0)
			return &idl->members[i];
	return NULL;
}

/* A struct (a method's or an error's), after optional blanks. */
static struct vl_type *
parse_struct_at(struct parser *ps, const char *what)
{
	skip(ps);
	if (*ps->p != '(') {
		fail(ps, "expected %s", what);
		return NULL;
	}
	return parse_struct(ps, 0);
}

static void
parse_member(struct parser *ps, struct vl_idl *idl)
{
	struct vl_member m, *v;
	const char *what;

	memset(&m, 0, sizeof m);
	if (keyword(ps, "type")) {
		m.kind = VM_TYPE;
		what = "type";
	} else if (keyword(ps, "method")) {
		m.kind = VM_METHOD;
		what = "method";
	} else if (keyword(ps, "error")) {
		m.kind = VM_ERROR;
		what = "error";
	} else {
		fail(ps, "expected type, method or error");
		return;
	}
	if ((m.name = member_name(ps, what)) == NULL)
		return;
	if (member_find(idl, m.name) != NULL) {
		fail(ps, "'%s' is already defined (types, methods and errors "
		    "share one namespace)", m.name);
		goto bad;
	}
	m.type = parse_struct_at(ps, m.kind == VM_TYPE ?
	    "a struct or an enum" : "a struct");
	if (m.type == NULL)
		goto bad;
	if (m.kind != VM_TYPE && m.type->kind != VK_STRUCT) {
		fail(ps, "%s %s takes a struct, not an enum", what, m.name);
		goto bad;
	}
	if (m.kind == VM_METHOD) {
		skip(ps);
		if (strncmp(ps->p, "->", 2) != 0) {
			fail(ps, "expected -> after the method's input");
			goto bad;
		}
		ps->p += 2;
		if ((m.out = parse_struct_at(ps, "the method's output")) ==
		    NULL)
			goto bad;
		if (m.out->kind != VK_STRUCT) {
			fail(ps, "method %s returns a struct, not an enum",
			    m.name);
			goto bad;
		}
	}
	v = realloc(idl->members, (idl->nmembers + 1) * sizeof *v);
	if (v == NULL) {
		nomem(ps);
		goto bad;
	}
	idl->members = v;
	idl->members[idl->nmembers++] = m;
	return;
bad:
	free(m.name);
	type_free(m.type);
	type_free(m.out);
}

/* An interface name: dot-separated labels of [a-z0-9-], the first
 * starting with a letter, none starting or ending with '-'. */
static char *
parse_iface_name(struct parser *ps)
{
	const char *start = ps->p, *label = ps->p;
	bool dot = false;
	char *s;

	if (!is_lower(*ps->p))
		return NULL;
	for (;; ps->p++) {
		if (is_lower(*ps->p) || is_digit(*ps->p) || *ps->p == '-')
			continue;
		if (ps->p == label || *label == '-' || ps->p[-1] == '-')
			return NULL;
		if (*ps->p != '.')
			break;
		dot = true;
		label = ps->p + 1;
	}
	if (!dot || ps->p - start > 255)
		return NULL;
	if ((s = strndup(start, (size_t)(ps->p - start))) == NULL)
		nomem(ps);
	return s;
}

/* Resolve every named type under t. */
static void
resolve(struct parser *ps, struct vl_idl *idl, struct vl_type *t)
{
	const struct vl_member *m;
	size_t i;

	if (t == NULL || ps->r != 0)
		return;
	if (t->kind == VK_ALIAS) {
		m = member_find(idl, t->alias);
		if (m == NULL || m->kind != VM_TYPE) {
			snprintf(ps->err, ps->err_len, "type %s is not defined",
			    t->alias);
			ps->r = -EINVAL;
			return;
		}
		t->target = m->type;
	}
	resolve(ps, idl, t->elem);
	for (i = 0; i < t->nfields; i++)
		resolve(ps, idl, t->fields[i].type);
}

int
vl_idl_parse(const char *text, struct vl_idl **ret, char *errtext,
    size_t errtext_len)
{
	struct parser ps = { text, text, errtext, errtext_len, 0 };
	struct vl_idl *idl;
	size_t i, n = 0;

	if ((idl = calloc(1, sizeof *idl)) == NULL)
		return -ENOMEM;
	skip(&ps);
	if (!keyword(&ps, "interface") || !skip(&ps))
		fail(&ps, "expected 'interface' and its name");
	else if ((idl->name = parse_iface_name(&ps)) == NULL)
		fail(&ps, "expected an interface name (io.example)");
	while (ps.r == 0) {
		skip(&ps);
		if (*ps.p == '\0')
			break;
		parse_member(&ps, idl);
	}
	for (i = 0; i < idl->nmembers && ps.r == 0; i++) {
		resolve(&ps, idl, idl->members[i].type);
		resolve(&ps, idl, idl->members[i].out);
		n += idl->members[i].kind == VM_METHOD;
	}
	if (ps.r == 0 && n == 0)
		fail(&ps, "the interface defines no method");
	if (ps.r == 0 && (idl->methods = calloc(n + 1, sizeof *idl->methods))
	    == NULL)
		nomem(&ps);
	if (ps.r != 0) {
		vl_idl_free(idl);
		return ps.r;
	}
	for (i = 0, n = 0; i < idl->nmembers; i++)
		if (idl->members[i].kind == VM_METHOD)
			idl->methods[n++] = idl->members[i].name;
	idl->nmethods = n;
	*ret = idl;
	return 0;
}

const char *
vl_idl_name(const struct vl_idl *idl)
{
	return idl->name;
}

const char *
vl_idl_method_name(const struct vl_idl *idl, size_t i)
{
	return i < idl->nmethods ? idl->methods[i] : NULL;
}

bool
vl_idl_has_method(const struct vl_idl *idl, const char *name)
{
	const struct vl_member *m = member_find(idl, name);

	return m != NULL && m->kind == VM_METHOD;
}

/* --- checking --- */

struct check {
	char	*why;
	size_t	 why_len;
	char	 path[256];
	size_t	 plen;
};

/* Append a path segment (cut, never overflowing). */
static size_t
path_push(struct check *ck, const char *fmt, ...)
{
	size_t old = ck->plen;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(ck->path + ck->plen, sizeof ck->path - ck->plen, fmt,
	    ap);
	va_end(ap);
	if (n > 0)
		ck->plen += (size_t)n < sizeof ck->path - ck->plen ?
		    (size_t)n : sizeof ck->path - ck->plen - 1;
	return old;
}

static void
path_pop(struct check *ck, size_t old)
{
	ck->plen = old;
	ck->path[old] = '\0';
}

static int
mismatch(struct check *ck, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(ck->why, ck->why_len, "%s%s", ck->path,
	    ck->plen > 0 ? ": " : "");
	if (n >= 0 && (size_t)n < ck->why_len) {
		va_start(ap, fmt);
		vsnprintf(ck->why + n, ck->why_len - n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static const struct vl_type *
resolved(const struct vl_type *t)
{
	return t->kind == VK_ALIAS ? t->target : t;
}

static int check_value(const struct vl_type *t, const json_t *v,
    struct check *ck);

/* A struct: declared fields, then unknown ones.  *ret_field (if not NULL)
 * is the field at fault. */
static int
check_struct(const struct vl_type *t, const json_t *obj, struct check *ck,
    const char **ret_field)
{
	const struct vl_field *f;
	const char *key;
	json_t *v;
	size_t i, old;
	int r = 0;

	for (i = 0; i < t->nfields && r == 0; i++) {
		f = &t->fields[i];
		old = path_push(ck, "%s%s", ck->plen > 0 ? "." : "", f->name);
		v = json_object_get(obj, f->name);
		if (v == NULL || json_is_null(v)) {
			if (resolved(f->type)->kind != VK_MAYBE)
				r = mismatch(ck, v == NULL ? "missing" :
				    "must not be null");
		} else
			r = check_value(f->type, v, ck);
		path_pop(ck, old);
		if (r < 0 && ret_field != NULL)
			*ret_field = f->name;
	}
	if (r < 0)
		return r;
	json_object_foreach((json_t *)obj, key, v) {
		if (field_dup(t, key))
			continue;
		old = path_push(ck, "%s%.100s", ck->plen > 0 ? "." : "", key);
		r = mismatch(ck, "unknown field");
		path_pop(ck, old);
		if (ret_field != NULL)
			*ret_field = key;
		return r;
	}
	return 0;
}

static int
check_enum(const struct vl_type *t, const json_t *v, struct check *ck)
{
	char list[200];
	size_t i, n = 0;

	if (json_is_string(v))
		for (i = 0; i < t->nfields; i++)
			if (strcmp(json_string_value(v), t->fields[i].name) == 0)
				return 0;
	list[0] = '\0';
	for (i = 0; i < t->nfields && n < sizeof list; i++)
		n += snprintf(list + n, sizeof list - n, "%s\"%s\"",
		    i == 0 ? "" : ", ", t->fields[i].name);
	return mismatch(ck, "must be one of %s", list);
}

/* An array's or a map's element, seg naming it in the path. */
static int
check_elem(const struct vl_type *t, const json_t *e, const char *seg,
    struct check *ck)
{
	size_t old;
	int r;

	old = path_push(ck, "%s", seg);
	r = check_value(t, e, ck);
	path_pop(ck, old);
	return r;
}

static int
check_value(const struct vl_type *t, const json_t *v, struct check *ck)
{
	const char *key;
	char seg[128];
	json_t *e;
	size_t i;
	int r;

	t = resolved(t);
	switch (t->kind) {
	case VK_MAYBE:
		return json_is_null(v) ? 0 : check_value(t->elem, v, ck);
	case VK_BOOL:
		return json_is_boolean(v) ? 0 :
		    mismatch(ck, "must be true or false");
	case VK_INT:
		return json_is_integer(v) ? 0 :
		    mismatch(ck, "must be an integer");
	case VK_FLOAT:
		return json_is_number(v) ? 0 : mismatch(ck, "must be a number");
	case VK_STRING:
		return json_is_string(v) ? 0 : mismatch(ck, "must be a string");
	case VK_OBJECT:
		return json_is_object(v) ? 0 :
		    mismatch(ck, "must be a JSON object");
	case VK_ENUM:
		return check_enum(t, v, ck);
	case VK_STRUCT:
		return json_is_object(v) ? check_struct(t, v, ck, NULL) :
		    mismatch(ck, "must be an object");
	case VK_ARRAY:
		if (!json_is_array(v))
			return mismatch(ck, "must be an array");
		json_array_foreach(v, i, e) {
			snprintf(seg, sizeof seg, "[%zu]", i);
			if ((r = check_elem(t->elem, e, seg, ck)) < 0)
				return r;
		}
		return 0;
	case VK_MAP:
		if (!json_is_object(v))
			return mismatch(ck, "must be an object (a map)");
		json_object_foreach((json_t *)v, key, e) {
			snprintf(seg, sizeof seg, "[\"%.100s\"]", key);
			if ((r = check_elem(t->elem, e, seg, ck)) < 0)
				return r;
		}
		return 0;
	case VK_ALIAS:
		break;
	}
	return mismatch(ck, "has an unresolved type");
}

int
vl_idl_check(const struct vl_idl *idl, enum vl_idl_part part,
    const char *name, const json_t *params, const char **ret_param,
    char *why, size_t why_len)
{
	const struct vl_member *m;
	const struct vl_type *t;
	struct check ck;
	const char *field = "parameters";
	int r;

	m = member_find(idl, name);
	if (m == NULL || (m->kind == VM_ERROR) != (part == VL_IDL_ERROR) ||
	    m->kind == VM_TYPE)
		return -ENOENT;
	t = part == VL_IDL_OUT ? m->out : m->type;
	memset(&ck, 0, sizeof ck);
	ck.why = why;
	ck.why_len = why_len;
	if (!json_is_object(params))
		r = mismatch(&ck, "must be an object");
	else
		r = check_struct(t, params, &ck, &field);
	if (r < 0)
		*ret_param = field;
	return r;
}
