/*
 * fuzz_vl_frame: a peer's bytes on the varlink socket, as a stream.
 *
 * The input is what a client writes to ferryd's socket, cut into chunks
 * the way reads may deliver it: the first two bytes seed the chunk sizes,
 * the rest is the stream.  Each chunk is appended to an evbuffer and
 * messages are cut at NUL bytes as vl_server.c's vl_conn_read does (the
 * search resumes where the last one stopped, a message over
 * VL_MESSAGE_MAX ends the connection), then each goes through
 * vl_msg_parse.
 *
 * Promises checked: a parsed call has a non-empty method and an object
 * for parameters and never both more and oneway, and the parameter it
 * names for a number out of range is one of its parameters; a refusal
 * names an error and a parameter and says why; and every reply or error
 * ferryd would send back (the call's parameters echoed, or {parameter} as
 * vl_conn_message sends) is
 * one JSON object that parses back to what was encoded, with exactly one
 * NUL, at its end, so it can never be read as two frames.
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "fuzz.h"
#include "vl_frame.h"

/* Check one encoded frame: one object, one NUL at the end, and equal to
 * what was encoded (want; NULL: only the shape). */
static void
check_frame(const char *buf, size_t len, const char *member, json_t *want)
{
	json_t *o;

	FUZZ_ASSERT(len >= 2 && buf[len - 1] == '\0');
	FUZZ_ASSERT(memchr(buf, '\0', len - 1) == NULL);
	o = json_loadb(buf, len - 1, JSON_REJECT_DUPLICATES, NULL);
	FUZZ_ASSERT(json_is_object(o));
	if (want != NULL)
		FUZZ_ASSERT(json_equal(json_object_get(o, member), want));
	json_decref(o);
}

static void
one_message(const char *buf, size_t len)
{
	const char *ename = NULL, *param = NULL, *member;
	struct vl_msg m;
	char why[256], iface[256];
	json_t *p;
	char *out;
	size_t outlen;
	int r;

	why[0] = '\0';
	r = vl_msg_parse(buf, len, &m, &ename, &param, why, sizeof why);
	if (r < 0) {
		FUZZ_ASSERT(r == -EINVAL || r == -ENOMEM || r == -EMSGSIZE);
		FUZZ_ASSERT(ename != NULL && param != NULL && why[0] != '\0');
		/* As vl_conn_message answers (the reason goes to its log). */
		p = json_pack("{s:s}", "parameter", param);
		if (vl_encode_error(ename, p, &out, &outlen) == 0) {
			check_frame(out, outlen, "parameters", p);
			free(out);
		}
		json_decref(p);
		return;
	}
	FUZZ_ASSERT(m.method != NULL && m.method[0] != '\0');
	FUZZ_ASSERT(json_is_object(m.params));
	FUZZ_ASSERT(!(m.more && m.oneway));
	FUZZ_ASSERT(m.overflow == NULL ||
	    json_object_get(m.params, m.overflow) != NULL);
	if (vl_method_split(m.method, iface, sizeof iface, &member) == 0)
		FUZZ_ASSERT(member[0] != '\0' && iface[0] != '\0' &&
		    strlen(iface) + 1 + strlen(member) == strlen(m.method));
	if (vl_encode_reply(m.params, m.more, &out, &outlen) == 0) {
		check_frame(out, outlen, "parameters", m.params);
		free(out);
	}
	vl_msg_clear(&m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct evbuffer *in;
	struct evbuffer_ptr pos;
	uint32_t seed;
	size_t off, chunk, len, scan = 0;
	char *buf;
	bool dead = false;

	if (size < 2)
		return 0;
	seed = (uint32_t)data[0] << 8 | data[1] | 1;
	data += 2;
	size -= 2;
	if ((in = evbuffer_new()) == NULL)
		return 0;
	for (off = 0; off < size && !dead; off += chunk) {
		/* xorshift32: chunks of 1 to 64 bytes, or the rest. */
		seed ^= seed << 13;
		seed ^= seed >> 17;
		seed ^= seed << 5;
		chunk = seed % 8 == 0 ? size - off : 1 + (seed >> 3) % 64;
		if (chunk > size - off)
			chunk = size - off;
		FUZZ_ASSERT(evbuffer_add(in, data + off, chunk) == 0);
		for (;;) {
			len = evbuffer_get_length(in);
			if (len == 0)
				break;
			FUZZ_ASSERT(evbuffer_ptr_set(in, &pos, scan,
			    EVBUFFER_PTR_SET) == 0);
			pos = evbuffer_search(in, "", 1, &pos);
			if (pos.pos < 0) {
				scan = len;
				dead = len > VL_MESSAGE_MAX;
				break;
			}
			scan = 0;
			if ((size_t)pos.pos > VL_MESSAGE_MAX) {
				dead = true;
				break;
			}
			buf = (char *)evbuffer_pullup(in, pos.pos + 1);
			FUZZ_ASSERT(buf != NULL && buf[pos.pos] == '\0');
			one_message(buf, (size_t)pos.pos);
			evbuffer_drain(in, pos.pos + 1);
		}
	}
	evbuffer_free(in);
	return 0;
}
