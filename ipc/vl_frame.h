/*
 * vl_frame: varlink message framing and validation, no I/O.
 *
 * A varlink message is one JSON object followed by a NUL byte.  This module
 * turns the bytes of one message (without its NUL) into a checked call, and
 * replies and errors into bytes (with their NUL).  Parsing uses
 * JSON_REJECT_DUPLICATES; jansson's own depth limit bounds nesting.  A
 * message larger than VL_MESSAGE_MAX is refused before it is parsed.
 * Parameters absent or null are an empty object (varlink/go sends null
 * for a call without input).  A number jansson cannot hold (an integer
 * beyond 64 bits, a real beyond a double) inside the parameters does not
 * make the message malformed: the call parses, with every such number
 * read as 0 (0.0 for a real) and the top-level parameter that held the first one named in
 * overflow, for the handler's dispatcher to refuse with a reply naming it.
 *
 * Ownership: a struct vl_msg owns its parse tree (msg); vl_msg_clear()
 * releases it.  Encoders return malloc'd bytes the caller frees.
 */
#ifndef FERRY_VL_FRAME_H
#define FERRY_VL_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#define VL_MESSAGE_MAX	(8u * 1024 * 1024)

struct vl_msg {
	json_t		*msg;		/* owned */
	const char	*method;	/* borrowed from msg */
	json_t		*params;	/* borrowed; an object, {} if absent */
	const char	*overflow;	/* borrowed, see above; or NULL */
	bool		 more;
	bool		 oneway;
};

/*
 * Parse one call.  On failure returns -EINVAL (or -ENOMEM, -EMSGSIZE) and,
 * when the error can be answered, fills *ret_error with the varlink error
 * name and *ret_param with the name of the offending field (both static;
 * "message" when it is the message as a whole), and says why in errtext.
 * On success *ret is filled (clear with vl_msg_clear).
 */
int	vl_msg_parse(const char *buf, size_t len, struct vl_msg *ret,
	    const char **ret_error, const char **ret_param,
	    char *errtext, size_t errtext_len);
void	vl_msg_clear(struct vl_msg *m);

/*
 * Encode {"parameters":params[,"continues":true]} or
 * {"error":name,"parameters":params} followed by NUL.  params is borrowed
 * (NULL means {}).  0 and *ret / *ret_len, or -ENOMEM.
 */
int	vl_encode_reply(json_t *params, bool continues, char **ret,
	    size_t *ret_len);
int	vl_encode_error(const char *name, json_t *params, char **ret,
	    size_t *ret_len);

/* Split "io.ferry.Get" into interface ("io.ferry") and member ("Get").
 * 0, or -EINVAL if there is no dot or either part is empty. */
int	vl_method_split(const char *method, char *iface, size_t iface_len,
	    const char **ret_member);

#endif
