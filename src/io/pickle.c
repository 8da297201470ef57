/* A pickle VM for torch.save's data (protocols 2-5, binary opcodes). See pickle.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "io/pickle.h"

struct pt__pickle {
  pt__pk **all; /* every object made, for freeing */
  size_t n_all, cap_all;
  size_t consumed;
};

typedef struct vm {
  pt__pickle *p;
  const uint8_t *b;
  size_t len, pos;
  const char *what;
  pt__pk **stack;
  int sp, cap_stack;
  int *marks;
  int n_marks, cap_marks;
  pt__pk **memo;
  size_t n_memo;
} vm;

#define MAX_MEMO (1u << 24)

static pt_status bad(vm *m, const char *fmt, ...) PT__PRINTF(2, 3);
static pt_status bad(vm *m, const char *fmt, ...) {
  char msg[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return pt__error(PT_EFORMAT, "%s: pickle: %s (at byte %zu)", m->what, msg, m->pos);
}

static pt__pk *mk(vm *m, pt__pk_kind kind) {
  pt__pickle *p = m->p;
  if (p->n_all == p->cap_all) {
    size_t cap = p->cap_all ? 2 * p->cap_all : 256;
    pt__pk **a = pt__realloc(p->all, cap * sizeof *a);
    if (!a) return NULL;
    p->all = a;
    p->cap_all = cap;
  }
  pt__pk *o = pt__calloc(1, sizeof *o);
  if (!o) return NULL;
  o->kind = kind;
  p->all[p->n_all++] = o;
  return o;
}

static int add_item(pt__pk *o, pt__pk *x) {
  if (o->n == o->cap) {
    int cap = o->cap ? 2 * o->cap : 4;
    pt__pk **a = pt__realloc(o->items, (size_t)cap * sizeof *a);
    if (!a) return -1;
    o->items = a;
    o->cap = cap;
  }
  o->items[o->n++] = x;
  return 0;
}

static pt_status push(vm *m, pt__pk *o) {
  if (!o) return pt__error(PT_ENOMEM, "%s: pickle: out of memory", m->what);
  if (m->sp == m->cap_stack) {
    int cap = m->cap_stack ? 2 * m->cap_stack : 64;
    pt__pk **a = pt__realloc(m->stack, (size_t)cap * sizeof *a);
    if (!a) return pt__error(PT_ENOMEM, "%s: pickle: out of memory", m->what);
    m->stack = a;
    m->cap_stack = cap;
  }
  m->stack[m->sp++] = o;
  return PT_OK;
}

static pt_status pop(vm *m, pt__pk **o) {
  *o = NULL;
  int floor = m->n_marks ? m->marks[m->n_marks - 1] : 0;
  if (m->sp <= floor) return bad(m, "stack underflow");
  *o = m->stack[--m->sp];
  return PT_OK;
}

/* Pops everything above the last MARK into a new object of kind (TUPLE, LIST) or the pairs of a DICT. */
static pt_status pop_mark(vm *m, int *first) {
  *first = 0;
  if (!m->n_marks) return bad(m, "no MARK on the stack");
  *first = m->marks[--m->n_marks];
  return PT_OK;
}

static int need(vm *m, size_t n) { return m->len - m->pos >= n; }

static pt_status str_obj(vm *m, pt__pk_kind kind, uint64_t n) {
  if (!need(m, n)) return bad(m, "string of %llu bytes runs past the end", (unsigned long long)n);
  pt__pk *o = mk(m, kind);
  if (o && !(o->s = pt__malloc((size_t)n + 1))) o = NULL;
  if (!o) return push(m, NULL);
  memcpy(o->s, m->b + m->pos, (size_t)n);
  o->s[n] = 0;
  o->slen = (size_t)n;
  m->pos += (size_t)n;
  return push(m, o);
}

static pt_status str_obj_at(vm *m, pt__pk_kind kind, const uint8_t *src, size_t n) {
  pt__pk *o = mk(m, kind);
  if (o && !(o->s = pt__malloc(n + 1))) o = NULL;
  if (!o) return push(m, NULL);
  memcpy(o->s, src, n);
  o->s[n] = 0;
  o->slen = n;
  return push(m, o);
}

static pt_status int_obj(vm *m, int64_t v) {
  pt__pk *o = mk(m, PK_INT);
  if (o) o->i = v;
  return push(m, o);
}

static uint64_t rd_le(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

static pt_status memo_put(vm *m, uint64_t idx) {
  if (!m->sp) return bad(m, "memo put with an empty stack");
  if (idx >= MAX_MEMO) return bad(m, "memo index %llu too large", (unsigned long long)idx);
  if (idx >= m->n_memo) {
    size_t n = (size_t)idx + 1 > 2 * m->n_memo ? (size_t)idx + 1 : 2 * m->n_memo;
    if (n > MAX_MEMO) n = MAX_MEMO;
    pt__pk **a = pt__realloc(m->memo, n * sizeof *a);
    if (!a) return pt__error(PT_ENOMEM, "%s: pickle: out of memory", m->what);
    memset(a + m->n_memo, 0, (n - m->n_memo) * sizeof *a);
    m->memo = a;
    m->n_memo = n;
  }
  m->memo[idx] = m->stack[m->sp - 1];
  return PT_OK;
}

static pt_status memo_get(vm *m, uint64_t idx) {
  if (idx >= m->n_memo || !m->memo[idx]) return bad(m, "memo index %llu was never set", (unsigned long long)idx);
  return push(m, m->memo[idx]);
}

static const char *dtype_of_storage(const char *type) {
  static const char *const map[][2] = {
      {"torch.FloatStorage", "F32"}, {"torch.HalfStorage", "F16"},  {"torch.BFloat16Storage", "BF16"},
      {"torch.DoubleStorage", "F64"}, {"torch.LongStorage", "I64"}, {"torch.IntStorage", "I32"},
      {"torch.ShortStorage", "I16"}, {"torch.CharStorage", "I8"},  {"torch.ByteStorage", "U8"},
      {"torch.BoolStorage", "BOOL"}};
  for (size_t i = 0; i < sizeof map / sizeof *map; i++)
    if (!strcmp(type, map[i][0])) return map[i][1];
  return NULL;
}

static int int_tuple(const pt__pk *t, int64_t *v, int max) {
  if (!t || (t->kind != PK_TUPLE && t->kind != PK_LIST) || t->n > max) return -1;
  for (int i = 0; i < t->n; i++) {
    if (t->items[i]->kind != PK_INT) return -1;
    v[i] = t->items[i]->i;
  }
  return t->n;
}

static pt_status persid(vm *m) {
  pt__pk *pid;
  PT__TRY(pop(m, &pid));
  if (pid->kind != PK_TUPLE || pid->n < 5 || pid->items[0]->kind != PK_STR || strcmp(pid->items[0]->s, "storage"))
    return bad(m, "persistent id is not a ('storage', ...) tuple");
  const pt__pk *type = pid->items[1], *key = pid->items[2], *numel = pid->items[4];
  if (type->kind != PK_GLOBAL || key->kind != PK_STR || numel->kind != PK_INT || numel->i < 0)
    return bad(m, "malformed storage id");
  const char *dt = dtype_of_storage(type->s);
  if (!dt) return pt__error(PT_EUNSUPPORTED, "%s: storage type %s is not supported", m->what, type->s);
  pt__pk *o = mk(m, PK_STORAGE);
  if (o && !(o->s = pt__strdup(key->s))) o = NULL;
  if (o) {
    snprintf(o->dtype, sizeof o->dtype, "%s", dt);
    o->numel = numel->i;
  }
  return push(m, o);
}

static pt_status reduce(vm *m) {
  pt__pk *args, *fn;
  PT__TRY(pop(m, &args));
  PT__TRY(pop(m, &fn));
  if (args->kind != PK_TUPLE) return bad(m, "REDUCE arguments are not a tuple");
  const char *name = fn->kind == PK_GLOBAL ? fn->s : "";
  if (!strcmp(name, "torch._utils._rebuild_tensor_v2") || !strcmp(name, "torch._utils._rebuild_tensor")) {
    pt__pk *t = mk(m, PK_TENSOR);
    if (!t) return push(m, NULL);
    if (args->n < 4 || args->items[0]->kind != PK_STORAGE || args->items[1]->kind != PK_INT)
      return bad(m, "%s with unexpected arguments", name);
    int nd = int_tuple(args->items[2], t->size, PT_MAX_DIMS), ns = int_tuple(args->items[3], t->stride, PT_MAX_DIMS);
    if (nd < 0 || ns != nd) return bad(m, "%s: size and stride are not matching tuples of at most %d ints", name, PT_MAX_DIMS);
    t->storage = args->items[0];
    t->offset = args->items[1]->i;
    t->ndim = nd;
    return push(m, t);
  }
  if (!strcmp(name, "torch._utils._rebuild_parameter") || !strcmp(name, "torch._utils._rebuild_parameter_with_state")) {
    if (args->n < 1 || args->items[0]->kind != PK_TENSOR) return bad(m, "%s without a tensor", name);
    return push(m, args->items[0]);
  }
  if (!strcmp(name, "collections.OrderedDict")) return push(m, mk(m, PK_DICT));
  pt__pk *o = mk(m, PK_OBJECT);
  if (o && (add_item(o, fn) || add_item(o, args))) o = NULL;
  return push(m, o);
}

static pt_status set_items(vm *m, pt__pk *target, pt__pk **kv, int n) {
  if (n % 2) return bad(m, "odd number of items for a dict");
  if (target->kind == PK_OBJECT) return PT_OK; /* e.g. a defaultdict: not modelled, contents dropped */
  if (target->kind != PK_DICT) return bad(m, "SETITEM on something that is not a dict");
  for (int i = 0; i < n; i++)
    if (add_item(target, kv[i])) return pt__error(PT_ENOMEM, "%s: pickle: out of memory", m->what);
  return PT_OK;
}

static pt_status append_items(vm *m, pt__pk *target, pt__pk **v, int n) {
  if (target->kind == PK_OBJECT) return PT_OK;
  if (target->kind != PK_LIST) return bad(m, "APPEND on something that is not a list");
  for (int i = 0; i < n; i++)
    if (add_item(target, v[i])) return pt__error(PT_ENOMEM, "%s: pickle: out of memory", m->what);
  return PT_OK;
}

/* Opcodes: PROTO, FRAME, the mark, POP, POP_MARK, DUP. */
static pt_status op_stack(vm *m, uint8_t op) {
  pt__pk *a;
  int first;
  switch (op) {
    case 0x80: /* PROTO */
      if (!need(m, 1)) return bad(m, "truncated PROTO");
      if (m->b[m->pos] > 5) return bad(m, "protocol %u", m->b[m->pos]);
      m->pos++;
      return PT_OK;
    case 0x95: /* FRAME */
      if (!need(m, 8)) return bad(m, "truncated FRAME");
      m->pos += 8;
      return PT_OK;
    case '(':
      if (m->n_marks == m->cap_marks) {
        int cap = m->cap_marks ? 2 * m->cap_marks : 16;
        int *mk2 = pt__realloc(m->marks, (size_t)cap * sizeof *mk2);
        if (!mk2) return pt__error(PT_ENOMEM, "%s: pickle: out of memory", m->what);
        m->marks = mk2;
        m->cap_marks = cap;
      }
      m->marks[m->n_marks++] = m->sp;
      return PT_OK;
    case '0': return pop(m, &a);
    case '1': return pop_mark(m, &first) == PT_OK ? (m->sp = first, PT_OK) : PT_EFORMAT;
    case '2':
      if (!m->sp) return bad(m, "DUP with an empty stack");
      return push(m, m->stack[m->sp - 1]);
    default: return bad(m, "opcode 0x%02x misrouted", op);
  }
}

/* Opcodes: strings and bytes. */
static pt_status op_string(vm *m, uint8_t op) {
  switch (op) {
    case 'X': case 'T': case 'B': /* BINUNICODE, BINSTRING, BINBYTES: 4-byte length */
      if (!need(m, 4)) return bad(m, "truncated string length");
      m->pos += 4;
      return str_obj(m, op == 'B' ? PK_BYTES : PK_STR, rd_le(m->b + m->pos - 4, 4));
    case 0x8c: case 'U': case 'C': /* SHORT_BINUNICODE, SHORT_BINSTRING, SHORT_BINBYTES */
      if (!need(m, 1)) return bad(m, "truncated string length");
      m->pos += 1;
      return str_obj(m, op == 'C' ? PK_BYTES : PK_STR, m->b[m->pos - 1]);
    case 0x8d: case 0x8e: /* BINUNICODE8, BINBYTES8 */
      if (!need(m, 8)) return bad(m, "truncated string length");
      m->pos += 8;
      return str_obj(m, op == 0x8e ? PK_BYTES : PK_STR, rd_le(m->b + m->pos - 8, 8));
    default: return bad(m, "opcode 0x%02x misrouted", op);
  }
}

/* Opcodes: integers, floats, None and booleans. */
static pt_status op_number(vm *m, uint8_t op) {
  pt__pk *o;
  switch (op) {
    case 'J':
      if (!need(m, 4)) return bad(m, "truncated BININT");
      m->pos += 4;
      return int_obj(m, (int32_t)(uint32_t)rd_le(m->b + m->pos - 4, 4));
    case 'K':
      if (!need(m, 1)) return bad(m, "truncated BININT1");
      return int_obj(m, m->b[m->pos++]);
    case 'M':
      if (!need(m, 2)) return bad(m, "truncated BININT2");
      m->pos += 2;
      return int_obj(m, (int64_t)rd_le(m->b + m->pos - 2, 2));
    case 0x8a: { /* LONG1: little-endian two's complement */
      if (!need(m, 1)) return bad(m, "truncated LONG1");
      int n = m->b[m->pos++];
      if (!need(m, (size_t)n)) return bad(m, "truncated LONG1");
      if (n > 8) { /* too big for int64 (torch's legacy magic number): keep the bytes, value 0 */
        m->pos += (size_t)n;
        return str_obj_at(m, PK_INT, m->b + m->pos - n, (size_t)n);
      }
      uint64_t v = rd_le(m->b + m->pos, n);
      if (n && n < 8 && (m->b[m->pos + n - 1] & 0x80)) v |= ~0ull << (8 * n);
      m->pos += (size_t)n;
      return int_obj(m, (int64_t)v);
    }
    case 'G': { /* BINFLOAT: big-endian */
      if (!need(m, 8)) return bad(m, "truncated BINFLOAT");
      uint64_t bits = 0;
      for (int i = 0; i < 8; i++) bits = bits << 8 | m->b[m->pos + i];
      m->pos += 8;
      o = mk(m, PK_FLOAT);
      if (o) memcpy(&o->f, &bits, 8);
      return push(m, o);
    }
    case 'N': return push(m, mk(m, PK_NONE));
    case 0x88: case 0x89:
      o = mk(m, PK_BOOL);
      if (o) o->i = op == 0x88;
      return push(m, o);
    default: return bad(m, "opcode 0x%02x misrouted", op);
  }
}

/* Opcodes: tuples, lists, dicts and their items. */
static pt_status op_container(vm *m, uint8_t op) {
  pt__pk *a, *o;
  int first;
  switch (op) {
    case '}': return push(m, mk(m, PK_DICT));
    case ']':
    case 0x8f: return push(m, mk(m, PK_LIST)); /* EMPTY_LIST, EMPTY_SET */
    case ')': return push(m, mk(m, PK_TUPLE));
    case 't': case 'l': /* TUPLE, LIST */
      PT__TRY(pop_mark(m, &first));
      o = mk(m, op == 't' ? PK_TUPLE : PK_LIST);
      for (int i = first; o && i < m->sp; i++)
        if (add_item(o, m->stack[i])) o = NULL;
      m->sp = first;
      return push(m, o);
    case 0x85: case 0x86: case 0x87: { /* TUPLE1..3 */
      int n = op - 0x84;
      int floor = m->n_marks ? m->marks[m->n_marks - 1] : 0;
      if (m->sp - floor < n) return bad(m, "stack underflow");
      o = mk(m, PK_TUPLE);
      for (int i = m->sp - n; o && i < m->sp; i++)
        if (add_item(o, m->stack[i])) o = NULL;
      m->sp -= n;
      return push(m, o);
    }
    case 'd': /* DICT */
      PT__TRY(pop_mark(m, &first));
      o = mk(m, PK_DICT);
      if (!o) return push(m, NULL);
      PT__TRY(set_items(m, o, m->stack + first, m->sp - first));
      m->sp = first;
      return push(m, o);
    case 's': {
      pt__pk *kv[2];
      PT__TRY(pop(m, &kv[1]));
      PT__TRY(pop(m, &kv[0]));
      if (m->sp <= (m->n_marks ? m->marks[m->n_marks - 1] : 0)) return bad(m, "SETITEM without a dict");
      return set_items(m, m->stack[m->sp - 1], kv, 2);
    }
    case 'u':
      PT__TRY(pop_mark(m, &first));
      if (first < 1 || (m->n_marks && first <= m->marks[m->n_marks - 1])) return bad(m, "SETITEMS without a dict");
      PT__TRY(set_items(m, m->stack[first - 1], m->stack + first, m->sp - first));
      m->sp = first;
      return PT_OK;
    case 'a':
      PT__TRY(pop(m, &a));
      if (m->sp <= (m->n_marks ? m->marks[m->n_marks - 1] : 0)) return bad(m, "APPEND without a list");
      return append_items(m, m->stack[m->sp - 1], &a, 1);
    case 'e': case 0x90: /* APPENDS, ADDITEMS */
      PT__TRY(pop_mark(m, &first));
      if (first < 1 || (m->n_marks && first <= m->marks[m->n_marks - 1])) return bad(m, "APPENDS without a list");
      PT__TRY(append_items(m, m->stack[first - 1], m->stack + first, m->sp - first));
      m->sp = first;
      return PT_OK;
    default: return bad(m, "opcode 0x%02x misrouted", op);
  }
}

/* Opcodes: the memo (PUT and GET). */
static pt_status op_memo(vm *m, uint8_t op) {
  switch (op) {
    case 'q':
      if (!need(m, 1)) return bad(m, "truncated BINPUT");
      return memo_put(m, m->b[m->pos++]);
    case 'r':
      if (!need(m, 4)) return bad(m, "truncated LONG_BINPUT");
      m->pos += 4;
      return memo_put(m, rd_le(m->b + m->pos - 4, 4));
    case 0x94: return memo_put(m, m->n_memo);
    case 'h':
      if (!need(m, 1)) return bad(m, "truncated BINGET");
      return memo_get(m, m->b[m->pos++]);
    case 'j':
      if (!need(m, 4)) return bad(m, "truncated LONG_BINGET");
      m->pos += 4;
      return memo_get(m, rd_le(m->b + m->pos - 4, 4));
    default: return bad(m, "opcode 0x%02x misrouted", op);
  }
}

/* Opcodes: globals, REDUCE, objects, BUILD and persistent ids. */
static pt_status op_object(vm *m, uint8_t op) {
  pt__pk *a, *b, *o;
  switch (op) {
    case 'c': { /* GLOBAL "module\nname\n" */
      const uint8_t *s = m->b + m->pos, *e1 = memchr(s, '\n', m->len - m->pos);
      const uint8_t *e2 = e1 ? memchr(e1 + 1, '\n', (size_t)(m->b + m->len - e1 - 1)) : NULL;
      if (!e2 || e2 - s > 1000) return bad(m, "malformed GLOBAL");
      o = mk(m, PK_GLOBAL);
      if (o && !(o->s = pt__malloc((size_t)(e2 - s) + 1))) o = NULL;
      if (o) {
        memcpy(o->s, s, (size_t)(e2 - s));
        o->s[e1 - s] = '.';
        o->s[e2 - s] = 0;
        o->slen = (size_t)(e2 - s);
      }
      m->pos += (size_t)(e2 - s) + 1;
      return push(m, o);
    }
    case 0x93: /* STACK_GLOBAL */
      PT__TRY(pop(m, &b));
      PT__TRY(pop(m, &a));
      if (a->kind != PK_STR || b->kind != PK_STR) return bad(m, "STACK_GLOBAL of non-strings");
      o = mk(m, PK_GLOBAL);
      if (o && !(o->s = pt__malloc(a->slen + b->slen + 2))) o = NULL;
      if (o) o->slen = (size_t)sprintf(o->s, "%s.%s", a->s, b->s);
      return push(m, o);
    case 'R': return reduce(m);
    case 0x81: case 0x92: /* NEWOBJ, NEWOBJ_EX: an object we do not model */
      if (op == 0x92) PT__TRY(pop(m, &b));
      PT__TRY(pop(m, &a));
      PT__TRY(pop(m, &b));
      o = mk(m, PK_OBJECT);
      if (o && (add_item(o, b) || add_item(o, a))) o = NULL;
      return push(m, o);
    case 'b': /* BUILD: state (e.g. a state_dict's _metadata) is not needed */
      PT__TRY(pop(m, &a));
      if (!m->sp) return bad(m, "BUILD with an empty stack");
      return PT_OK;
    case 'Q': return persid(m);
    default: return bad(m, "opcode 0x%02x misrouted", op);
  }
}

/* One opcode: the groups above do the work. */
static pt_status step(vm *m, int *done) {
  const uint8_t op = m->b[m->pos++];
  switch (op) {
    case 0x80: case 0x95: case '(': case '0': case '1': case '2':
      return op_stack(m, op);
    case 'X': case 'T': case 'B': case 0x8c: case 'U': case 'C': case 0x8d: case 0x8e:
      return op_string(m, op);
    case 'J': case 'K': case 'M': case 0x8a: case 'G': case 'N': case 0x88: case 0x89:
      return op_number(m, op);
    case '}': case ']': case 0x8f: case ')': case 't': case 'l': case 0x85: case 0x86: case 0x87: case 'd': case 's': case 'u': case 'a': case 'e': case 0x90:
      return op_container(m, op);
    case 'q': case 'r': case 0x94: case 'h': case 'j':
      return op_memo(m, op);
    case 'c': case 0x93: case 'R': case 0x81: case 0x92: case 'b': case 'Q':
      return op_object(m, op);
    case '.': *done = 1; return PT_OK;
    default:
      m->pos--;
      return bad(m, "unknown or unsupported opcode 0x%02x", op);
  }
}

pt_status pt__pickle_load(const void *data, size_t len, const char *what, pt__pickle **out, pt__pk **result) {
  *out = NULL;
  *result = NULL;
  vm m = {0};
  m.b = data;
  m.len = len;
  m.what = what;
  m.cap_stack = 64; /* never NULL: MARK-delimited ranges index it even when empty */
  if (!(m.p = pt__calloc(1, sizeof *m.p)) || !(m.stack = pt__malloc((size_t)m.cap_stack * sizeof *m.stack))) {
    free(m.p);
    return pt__error(PT_ENOMEM, "%s: pickle: out of memory", what);
  }
  pt_status s = PT_OK;
  int done = 0;
  while (s == PT_OK && !done) {
    if (m.pos >= m.len) {
      s = bad(&m, "no STOP opcode (truncated)");
      break;
    }
    s = step(&m, &done);
  }
  if (s == PT_OK && m.sp != 1) s = bad(&m, "%d values on the stack at STOP", m.sp);
  if (s == PT_OK) {
    *result = m.stack[0];
    m.p->consumed = m.pos;
    *out = m.p;
  } else {
    pt__pickle_free(m.p);
  }
  free(m.stack);
  free(m.marks);
  free(m.memo);
  return s;
}

size_t pt__pickle_consumed(const pt__pickle *p) { return p->consumed; }

void pt__pickle_free(pt__pickle *p) {
  if (!p) return;
  for (size_t i = 0; i < p->n_all; i++) {
    free(p->all[i]->s);
    free(p->all[i]->items);
    free(p->all[i]);
  }
  free(p->all);
  free(p);
}

pt__pk *pt__pk_get(const pt__pk *d, const char *key) {
  if (!d || d->kind != PK_DICT) return NULL;
  for (int i = 0; i + 1 < d->n; i += 2)
    if (d->items[i]->kind == PK_STR && !strcmp(d->items[i]->s, key)) return d->items[i + 1];
  return NULL;
}
