/*
 * test_vl_frame: varlink message parsing refuses what a peer must not be
 * able to slip past (duplicate keys, wrong types, oversize, deep nesting,
 * non-objects) with the right error and field, and encodes replies exactly
 * as the wire format wants (compact JSON, one trailing NUL).  Also guards
 * two things generic varlink clients rely on (issue 9): "parameters": null,
 * which varlink/go sends for a call without input, is an empty object, not
 * a malformed call; and a number jansson cannot hold inside the parameters
 * (1e400, 2^63) names the parameter holding it instead of failing the
 * whole message as unparseable.
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

#include "vl_frame.h"

static int
parse(const char *s, struct vl_msg *m, const char **param)
{
	const char *ename;
	char why[256];

	return vl_msg_parse(s, strlen(s), m, &ename, param, why, sizeof why);
}

static void
test_parse_call(void **state)
{
	struct vl_msg m;
	const char *param;

	assert_int_equal(parse("{\"method\":\"io.ferry.Get\",\"parameters\":"
	    "{\"collection\":\"c\"},\"more\":true}", &m, &param), 0);
	assert_string_equal(m.method, "io.ferry.Get");
	assert_true(m.more);
	assert_false(m.oneway);
	assert_string_equal(json_string_value(json_object_get(m.params,
	    "collection")), "c");
	vl_msg_clear(&m);
	/* parameters may be absent: an empty object stands in. */
	assert_int_equal(parse("{\"method\":\"io.ferry.Status\"}", &m,
	    &param), 0);
	assert_true(json_is_object(m.params));
	assert_int_equal(json_object_size(m.params), 0);
	vl_msg_clear(&m);
	/* ...and so may they be null. */
	assert_int_equal(parse("{\"method\":\"org.varlink.service.GetInfo\","
	    "\"parameters\":null}", &m, &param), 0);
	assert_true(json_is_object(m.params));
	assert_int_equal(json_object_size(m.params), 0);
	assert_null(m.overflow);
	vl_msg_clear(&m);
}

/* Numbers out of jansson's range: the call parses, the parameter that
 * holds the first one is named, each reads 0 (0.0 if it was a real);
 * strings are left alone. */
static void
test_parse_overflow(void **state)
{
	static const struct {
		const char *msg;
		const char *overflow;	/* NULL: none inside parameters */
	} cases[] = {
		{ "{\"method\":\"a.B\",\"parameters\":{\"c\":\"x\","
		    "\"body\":{\"n\":1e400}}}", "body" },
		{ "{\"method\":\"a.B\",\"parameters\":{\"if_rev\":"
		    "9223372036854775808}}", "if_rev" },
		{ "{\"method\":\"a.B\",\"parameters\":{\"s\":\"1e400\",\"p\":"
		    "{\"a\":[1,{\"k\":-99999999999999999999}]},\"q\":-1e999}}",
		    "p" },
		{ "{\"method\":\"a.B\",\"parameters\":{\"b\\u006fdy\":"
		    "{\"n\":1E+999}}}", "body" },
		{ "{\"x\":[1e999],\"method\":\"a.B\",\"parameters\":{}}", NULL },
	};
	struct vl_msg m;
	const char *param;
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		assert_int_equal(parse(cases[i].msg, &m, &param), 0);
		if (cases[i].overflow == NULL)
			assert_null(m.overflow);
		else
			assert_string_equal(m.overflow, cases[i].overflow);
		vl_msg_clear(&m);
	}
	assert_int_equal(parse(cases[2].msg, &m, &param), 0);
	assert_string_equal(json_string_value(json_object_get(m.params, "s")),
	    "1e400");
	/* Each keeps its JSON type: a real reads 0.0, an integer 0. */
	assert_true(json_is_real(json_object_get(m.params, "q")));
	assert_true(json_is_integer(json_array_get(json_object_get(
	    json_object_get(m.params, "p"), "a"), 0)));
	assert_true(json_is_integer(json_object_get(json_array_get(
	    json_object_get(json_object_get(m.params, "p"), "a"), 1), "k")));
	vl_msg_clear(&m);
	/* Underflow is no overflow: jansson takes 1e-400 as 0.0. */
	assert_int_equal(parse("{\"method\":\"a.B\",\"parameters\":"
	    "{\"n\":1e-400}}", &m, &param), 0);
	assert_null(m.overflow);
	vl_msg_clear(&m);
	/* Another fault besides: still refused. */
	assert_int_equal(parse("{\"method\":\"a.B\",\"parameters\":"
	    "{\"n\":1e999,}}", &m, &param), -EINVAL);
	assert_string_equal(param, "message");
}

static void
test_parse_rejects(void **state)
{
	static const struct {
		const char *msg;
		const char *param;
	} bad[] = {
		{ "{\"method\":\"a.B\",\"method\":\"a.C\"}", "message" },
		{ "{\"method\":\"a.B\",\"parameters\":{\"x\":1,\"x\":2}}",
		    "message" },
		{ "[1,2]", "message" },
		{ "\"str\"", "message" },
		{ "{\"method\":1}", "method" },
		{ "{\"method\":\"\"}", "method" },
		{ "{\"parameters\":{}}", "method" },
		{ "{\"method\":\"a.B\",\"parameters\":[]}", "parameters" },
		{ "{\"method\":\"a.B\",\"more\":\"yes\"}", "more" },
		{ "{\"method\":\"a.B\",\"oneway\":1}", "oneway" },
		{ "{\"method\":\"a.B\",\"more\":true,\"oneway\":true}",
		    "oneway" },
		{ "{\"method\":\"a.B\",\"upgrade\":true}", "upgrade" },
		{ "{\"method\":\"a.B\"", "message" },
		{ "", "message" },
	};
	struct vl_msg m;
	const char *param;
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		memset(&m, 0, sizeof m);
		assert_int_equal(parse(bad[i].msg, &m, &param), -EINVAL);
		assert_string_equal(param, bad[i].param);
		assert_null(m.msg);
	}
}

/* 10^5 nested arrays must be refused by the parser, not crash it. */
static void
test_parse_deep(void **state)
{
	size_t depth = 100000, n, i;
	struct vl_msg m;
	const char *param;
	char *s, *p;

	n = 64 + 2 * depth;
	s = malloc(n);
	p = s + sprintf(s, "{\"method\":\"a.B\",\"parameters\":{\"x\":");
	for (i = 0; i < depth; i++)
		*p++ = '[';
	for (i = 0; i < depth; i++)
		*p++ = ']';
	strcpy(p, "}}");
	assert_int_equal(parse(s, &m, &param), -EINVAL);
	free(s);
}

static void
test_parse_oversize(void **state)
{
	const char *ename, *param;
	struct vl_msg m;
	char why[256];

	assert_int_equal(vl_msg_parse("{}", VL_MESSAGE_MAX + 1, &m, &ename,
	    &param, why, sizeof why), -EMSGSIZE);
	assert_non_null(strstr(why, "exceeds"));
}

static void
test_encode(void **state)
{
	json_t *p = json_pack("{s:i}", "a", 1);
	size_t len;
	char *buf;

	assert_int_equal(vl_encode_reply(p, false, &buf, &len), 0);
	assert_int_equal(len, strlen("{\"parameters\":{\"a\":1}}") + 1);
	assert_string_equal(buf, "{\"parameters\":{\"a\":1}}");
	assert_int_equal(buf[len - 1], '\0');
	free(buf);
	assert_int_equal(vl_encode_reply(NULL, true, &buf, &len), 0);
	assert_string_equal(buf, "{\"parameters\":{},\"continues\":true}");
	free(buf);
	assert_int_equal(vl_encode_error("io.ferry.NotFound", p, &buf, &len),
	    0);
	assert_string_equal(buf,
	    "{\"error\":\"io.ferry.NotFound\",\"parameters\":{\"a\":1}}");
	free(buf);
	assert_int_equal(vl_encode_error("x.Y", NULL, &buf, &len), 0);
	assert_string_equal(buf, "{\"error\":\"x.Y\",\"parameters\":{}}");
	free(buf);
	json_decref(p);
}

static void
test_method_split(void **state)
{
	char iface[64];
	const char *member;

	assert_int_equal(vl_method_split("io.ferry.Get", iface, sizeof iface,
	    &member), 0);
	assert_string_equal(iface, "io.ferry");
	assert_string_equal(member, "Get");
	assert_int_equal(vl_method_split("Get", iface, sizeof iface, &member),
	    -EINVAL);
	assert_int_equal(vl_method_split("io.ferry.", iface, sizeof iface,
	    &member), -EINVAL);
	assert_int_equal(vl_method_split(".Get", iface, sizeof iface,
	    &member), -EINVAL);
	assert_int_equal(vl_method_split("a.b.C", iface, 3, &member), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_call),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_parse_overflow),
		cmocka_unit_test(test_parse_deep),
		cmocka_unit_test(test_parse_oversize),
		cmocka_unit_test(test_encode),
		cmocka_unit_test(test_method_split),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
