/*
 * vl_idl: varlink interface descriptions, parsed, and JSON values checked
 * against them.  No I/O, no logging, no state outside the parsed struct.
 *
 * The parser takes the grammar of the varlink specification
 * (https://varlink.org/Interface-Definition): "interface" and a reverse-
 * domain name, then members: "type Name (struct or enum)", "method
 * Name(struct) -> (struct)", "error Name (struct)".  Comments run from '#'
 * to the end of the line.  Types, methods and errors share one namespace:
 * a name defined twice is an error, as in the reference implementations
 * (varlink/go's idl package, libvarlink, sd-varlink), so a description
 * this module accepts parses there too.  Named types must be defined in
 * the same interface; fields and enum values are unique within their
 * struct or enum.
 *
 * Checking follows the wire format's rules: a struct is a JSON object with
 * every field not marked '?' present and not null, and no other member; a
 * '?' field may be absent or null; int is a JSON integer, float any JSON
 * number, string a JSON string, object any JSON object, bool a boolean;
 * []T an array of T, [string]T an object whose values are T; an enum a
 * string naming one of its values.
 *
 * Ownership: a struct vl_idl owns everything it was parsed into;
 * vl_idl_free() releases it.  Names it returns are borrowed from it.
 */
#ifndef FERRY_VL_IDL_H
#define FERRY_VL_IDL_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

struct vl_idl;

/* What vl_idl_check checks a value against. */
enum vl_idl_part {
	VL_IDL_IN,	/* a method's parameters */
	VL_IDL_OUT,	/* a method's reply */
	VL_IDL_ERROR,	/* an error's parameters */
};

/*
 * Parse an interface description.  0 and *ret (free with vl_idl_free), or
 * -EINVAL with a sentence naming the line and what is wrong in errtext,
 * or -ENOMEM.
 */
int	vl_idl_parse(const char *text, struct vl_idl **ret, char *errtext,
	    size_t errtext_len);
/* Accepts NULL. */
void	vl_idl_free(struct vl_idl *idl);
/* The interface's name ("io.ferry"). */
const char *vl_idl_name(const struct vl_idl *idl);
/* The names of its methods, in the order defined: i from 0 while not
 * NULL. */
const char *vl_idl_method_name(const struct vl_idl *idl, size_t i);
bool	vl_idl_has_method(const struct vl_idl *idl, const char *name);

/*
 * Check params (a JSON object) against a member: a method's input or
 * output, or an error's parameters; name is the member's name without the
 * interface ("Put").  0 if it type-checks; -ENOENT if there is no such
 * member; -EINVAL if it does not, with *ret_param the top-level field at
 * fault (borrowed from idl or from params) and a sentence for people in
 * why, naming the path inside it ("body: must be a JSON object",
 * "status.state: must be one of ...").
 */
int	vl_idl_check(const struct vl_idl *idl, enum vl_idl_part part,
	    const char *name, const json_t *params, const char **ret_param,
	    char *why, size_t why_len);

#endif
