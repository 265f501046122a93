/*
 * fuzz.h: what the libFuzzer harnesses in tests/fuzz/ share.
 *
 * Each harness is one program whose LLVMFuzzerTestOneInput feeds one
 * input to one part of ferry that reads bytes a peer controls, and then
 * checks what that part promises (its header's contract), not merely that
 * it did not crash.  A broken promise aborts, which libFuzzer reports as a
 * crash with the input that caused it.  Harnesses free everything they
 * make: LeakSanitizer runs after every input.
 */
#ifndef FERRY_FUZZ_H
#define FERRY_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* A promise that must hold; abort with where and what, if it does not. */
#define FUZZ_ASSERT(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: broken promise: %s\n",		\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
