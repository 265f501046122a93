/*
 * test_vl_idl: guards issue 9's varlink promises at their root.  The
 * installed ipc/io.ferry.varlink must parse under the varlink grammar,
 * where types, methods and errors share one namespace (it once declared
 * both "type Status" and "method Status", which every reference
 * implementation refuses); and the checker that ferryd runs on every
 * call must refuse exactly what a varlink peer would call ill-typed
 * (a wrong JSON type, an unknown field, a missing required one) and name
 * the top-level parameter at fault, while taking what is well-typed.
 */
#include "autoconfig.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vl_idl.h"

static const char sample[] =
"# A sample.\n"
"interface org.example.more-test\n"
"\n"
"type Item (\n"
"  name: string,\n"
"  # a comment inside a struct\n"
"  kind: (small, large),\n"
"  tags: ?[]string,\n"
"  extra: ?[string]int,\n"
"  child: ?Item\n"
")\n"
"method Take(item: Item, n: ?int, ratio: ?float, on: ?bool,\n"
"    blob: ?object) -> (items: []Item, next: ?string)\n"
"method Nothing() -> ()\n"
"error Broken (reason: ?string)\n";

static struct vl_idl *
load(const char *text)
{
	struct vl_idl *idl = NULL;
	char why[256];

	if (vl_idl_parse(text, &idl, why, sizeof why) < 0)
		fail_msg("cannot parse: %s", why);
	return idl;
}

static char *
read_file(const char *path)
{
	char *buf;
	FILE *f;
	long n;

	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	if (buf != NULL)
		buf[n] = '\0';
	fclose(f);
	return buf;
}

/* The installed description, as ferryd serves it. */
static void
test_installed_file(void **state)
{
	const char *src = getenv("FERRY_SRC_DIR");
	struct vl_idl *idl;
	char path[4096], *text;

	snprintf(path, sizeof path, "%s/ipc/io.ferry.varlink",
	    src != NULL ? src : ".");
	text = read_file(path);
	assert_non_null(text);
	idl = load(text);
	assert_string_equal(vl_idl_name(idl), "io.ferry");
	assert_true(vl_idl_has_method(idl, "Status"));
	assert_true(vl_idl_has_method(idl, "Put"));
	assert_false(vl_idl_has_method(idl, "Doc"));
	vl_idl_free(idl);
	free(text);
}

static void
test_parse_refuses(void **state)
{
	static const struct {
		const char *text;
		const char *why;	/* a part of the message */
	} bad[] = {
		{ "interface a.b\ntype Status (a: int)\n"
		    "method Status() -> (status: Status)\n", "already defined" },
		{ "interface a.b\nmethod M() -> ()\nerror M ()\n",
		    "already defined" },
		{ "interface a.b\nmethod M(a: int, a: string) -> ()\n",
		    "defined twice" },
		{ "interface a.b\nmethod M(x: Nope) -> ()\n", "not defined" },
		{ "interface a.b\nmethod M(x: ??int) -> ()\n", "??" },
		{ "interface a.b\ntype E (a, b: int)\nmethod M() -> ()\n",
		    "no types" },
		{ "interface a.b\ntype E (a: int, b)\nmethod M() -> ()\n",
		    "no type" },
		{ "interface a.b\ntype T (a: int)\n", "no method" },
		{ "interface a.b\nmethod M() -> (x: [int]string)\n",
		    "[string]" },
		{ "interface a.b\nmethod M() -> (x: int\n", "','" },
		{ "interface ab\nmethod M() -> ()\n", "interface name" },
		{ "interface a.b\nmethod m() -> ()\n", "name" },
		{ "interface a.b\nmethod M()\n", "->" },
		{ "interface a.b\nmethod M() -> ()\nbogus\n", "line 3" },
		{ "", "interface" },
	};
	struct vl_idl *idl;
	char why[256];
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		idl = NULL;
		why[0] = '\0';
		if (vl_idl_parse(bad[i].text, &idl, why, sizeof why) !=
		    -EINVAL)
			fail_msg("accepted: %s", bad[i].text);
		assert_null(idl);
		if (strstr(why, bad[i].why) == NULL)
			fail_msg("for %s: '%s' does not say '%s'", bad[i].text,
			    why, bad[i].why);
	}
}

static void
test_method_names(void **state)
{
	struct vl_idl *idl = load(sample);

	assert_string_equal(vl_idl_name(idl), "org.example.more-test");
	assert_string_equal(vl_idl_method_name(idl, 0), "Take");
	assert_string_equal(vl_idl_method_name(idl, 1), "Nothing");
	assert_null(vl_idl_method_name(idl, 2));
	assert_false(vl_idl_has_method(idl, "Item"));
	assert_false(vl_idl_has_method(idl, "Broken"));
	vl_idl_free(idl);
}

/* Check text against Take's input: 0, or the parameter at fault. */
static const char *
check(struct vl_idl *idl, enum vl_idl_part part, const char *name,
    const char *text)
{
	static char param[128];
	const char *p = NULL;
	char why[256];
	json_t *v;
	int r;

	v = json_loads(text, JSON_DECODE_ANY, NULL);
	assert_non_null(v);
	r = vl_idl_check(idl, part, name, v, &p, why, sizeof why);
	if (r == 0) {
		json_decref(v);
		return NULL;
	}
	assert_int_equal(r, -EINVAL);
	assert_non_null(p);
	assert_true(why[0] != '\0');
	snprintf(param, sizeof param, "%s", p);
	json_decref(v);
	return param;
}

static void
test_check(void **state)
{
	static const struct {
		const char *params;
		const char *param;	/* NULL: well-typed */
	} cases[] = {
		{ "{\"item\":{\"name\":\"a\",\"kind\":\"small\"}}", NULL },
		{ "{\"item\":{\"name\":\"a\",\"kind\":\"large\",\"tags\":null,"
		    "\"extra\":{\"x\":1},\"child\":{\"name\":\"b\","
		    "\"kind\":\"small\",\"tags\":[\"t\"]}},\"n\":null,"
		    "\"ratio\":1,\"on\":false,\"blob\":{\"any\":[1,\"x\"]}}",
		    NULL },
		{ "{\"item\":{\"name\":\"a\",\"kind\":\"small\"},\"ratio\":0.5}",
		    NULL },
		{ "{}", "item" },
		{ "{\"item\":null}", "item" },
		{ "{\"item\":[]}", "item" },
		{ "{\"item\":{\"name\":\"a\"}}", "item" },
		{ "{\"item\":{\"name\":\"a\",\"kind\":\"medium\"}}", "item" },
		{ "{\"item\":{\"name\":\"a\",\"kind\":1}}", "item" },
		{ "{\"item\":{\"name\":\"a\",\"kind\":\"small\",\"x\":1}}",
		    "item" },
		{ "{\"item\":{\"name\":\"a\",\"kind\":\"small\",\"tags\":[1]}}",
		    "item" },
		{ "{\"item\":{\"name\":\"a\",\"kind\":\"small\","
		    "\"extra\":{\"x\":\"1\"}}}", "item" },
		{ "{\"item\":{\"name\":\"a\",\"kind\":\"small\","
		    "\"child\":{\"name\":7,\"kind\":\"small\"}}}", "item" },
		{ "{\"item\":{\"name\":\"a\",\"kind\":\"small\"},\"n\":1.5}",
		    "n" },
		{ "{\"item\":{\"name\":\"a\",\"kind\":\"small\"},\"n\":\"1\"}",
		    "n" },
		{ "{\"item\":{\"name\":\"a\",\"kind\":\"small\"},\"ratio\":\"x\"}",
		    "ratio" },
		{ "{\"item\":{\"name\":\"a\",\"kind\":\"small\"},\"on\":0}",
		    "on" },
		{ "{\"item\":{\"name\":\"a\",\"kind\":\"small\"},\"blob\":[]}",
		    "blob" },
		{ "{\"item\":{\"name\":\"a\",\"kind\":\"small\"},\"bogus\":1}",
		    "bogus" },
	};
	struct vl_idl *idl = load(sample);
	const char *got;
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		got = check(idl, VL_IDL_IN, "Take", cases[i].params);
		if (cases[i].param == NULL && got != NULL)
			fail_msg("%s refused on %s", cases[i].params, got);
		if (cases[i].param != NULL && (got == NULL ||
		    strcmp(got, cases[i].param) != 0))
			fail_msg("%s: expected %s at fault, got %s",
			    cases[i].params, cases[i].param,
			    got != NULL ? got : "none");
	}
	/* Output and errors are checked the same way. */
	assert_null(check(idl, VL_IDL_OUT, "Take", "{\"items\":[]}"));
	assert_string_equal(check(idl, VL_IDL_OUT, "Take",
	    "{\"items\":[],\"next\":1}"), "next");
	assert_null(check(idl, VL_IDL_OUT, "Nothing", "{}"));
	assert_string_equal(check(idl, VL_IDL_IN, "Nothing", "{\"a\":1}"),
	    "a");
	assert_null(check(idl, VL_IDL_ERROR, "Broken", "{}"));
	assert_string_equal(check(idl, VL_IDL_ERROR, "Broken",
	    "{\"reason\":\"x\",\"more\":1}"), "more");
	assert_string_equal(check(idl, VL_IDL_IN, "Nothing", "[]"),
	    "parameters");
	vl_idl_free(idl);
}

static void
test_check_unknown_member(void **state)
{
	struct vl_idl *idl = load(sample);
	const char *p;
	char why[64];
	json_t *v = json_object();

	assert_int_equal(vl_idl_check(idl, VL_IDL_IN, "Nope", v, &p, why,
	    sizeof why), -ENOENT);
	assert_int_equal(vl_idl_check(idl, VL_IDL_IN, "Item", v, &p, why,
	    sizeof why), -ENOENT);
	assert_int_equal(vl_idl_check(idl, VL_IDL_ERROR, "Take", v, &p, why,
	    sizeof why), -ENOENT);
	assert_int_equal(vl_idl_check(idl, VL_IDL_IN, "Broken", v, &p, why,
	    sizeof why), -ENOENT);
	json_decref(v);
	vl_idl_free(idl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_installed_file),
		cmocka_unit_test(test_parse_refuses),
		cmocka_unit_test(test_method_names),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_check_unknown_member),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
