/* Status codes: one X-macro table generates the enum, pt_status_name() and pt_status_str(). */
#ifndef PREDTUNER_STATUS_H
#define PREDTUNER_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

/* X(NAME, value, message) */
#define PT_STATUS_MAP(X)                                              \
  X(OK, 0, "success")                                                 \
  X(EINVAL, -1, "invalid argument")                                   \
  X(ENOMEM, -2, "out of memory")                                      \
  X(EIO, -3, "input/output error")                                    \
  X(EFORMAT, -4, "malformed input")                                   \
  X(ESHAPE, -5, "shape mismatch")                                     \
  X(ENOTFOUND, -6, "not found")                                       \
  X(EUNSUPPORTED, -7, "unsupported")                                  \
  X(EBACKEND, -8, "backend failure")                                  \
  X(ENODEV, -9, "no such device")                                     \
  X(ERANGE, -10, "value out of range")                                \
  X(EEXIST, -11, "already exists")                                    \
  X(ENONFINITE, -12, "non-finite value")                              \
  X(EBUSY, -13, "in use by another run")                              \
  X(ESTALE, -14, "made from other inputs")

#define PT__STATUS_ONE(name, value, msg) +1
/* How many codes there are: their values are 0, -1, ..., -(PT_STATUS_COUNT - 1). */
enum { PT_STATUS_COUNT = 0 PT_STATUS_MAP(PT__STATUS_ONE) };
#undef PT__STATUS_ONE

typedef enum pt_status {
#define PT__STATUS_ENUM(name, value, msg) PT_##name = (value),
  PT_STATUS_MAP(PT__STATUS_ENUM)
#undef PT__STATUS_ENUM
} pt_status;

/* "PT_EINVAL"; "PT_UNKNOWN" for a value outside the table. */
const char *pt_status_name(pt_status s);
/* "invalid argument"; "unknown status" for a value outside the table. */
const char *pt_status_str(pt_status s);

/* The detail message of the last failure on this thread, e.g.
 * "w.safetensors: tensor 'convs.0.weight': expected shape [32,1,5,5], found [32,1,3,3]".
 * Never NULL; empty when nothing failed yet. */
const char *pt_last_error(void);
void pt_clear_error(void);

#ifdef __cplusplus
}
#endif
#endif
