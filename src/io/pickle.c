/* A pickle VM for torch.save's data (protocols 2-5, binary opcodes): the object table, the stack and
 * the memo, and the opcodes by group. What torch's pickles call is modelled in pickle_torch.c. See
 * pickle.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "io/pickle.h"
#include "io/pickle_vm.h"

#define MAX_MEMO (1u << 24)

pt_status pt__pkvm_bad(pt__pkvm *m, const char *fmt, ...) {
  char msg[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return pt__error(PT_EFORMAT, "%s: pickle: %s (at byte %zu)", m->what, msg, m->pos);
}

pt__pk *pt__pkvm_mk(pt__pkvm *m, pt__pk_kind kind) {
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

int pt__pkvm_add(pt__pk *o, pt__pk *x) {
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

pt_status pt__pkvm_push(pt__pkvm *m, pt__pk *o) {
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

pt_status pt__pkvm_pop(pt__pkvm *m, pt__pk **o) {
  *o = NULL;
  int floor = m->n_marks ? m->marks[m->n_marks - 1] : 0;
  if (m->sp <= floor) return pt__pkvm_bad(m, "stack underflow");
  *o = m->stack[--m->sp];
  return PT_OK;
}

/* Pops everything above the last MARK into a new object of kind (TUPLE, LIST) or the pairs of a DICT. */
static pt_status pop_mark(pt__pkvm *m, int *first) {
  *first = 0;
  if (!m->n_marks) return pt__pkvm_bad(m, "no MARK on the stack");
  *first = m->marks[--m->n_marks];
  return PT_OK;
}

static int need(pt__pkvm *m, size_t n) { return m->len - m->pos >= n; }

static pt_status str_obj(pt__pkvm *m, pt__pk_kind kind, uint64_t n) {
  if (!need(m, n)) return pt__pkvm_bad(m, "string of %llu bytes runs past the end", (unsigned long long)n);
  pt__pk *o = pt__pkvm_mk(m, kind);
  if (o && !(o->s = pt__malloc((size_t)n + 1))) o = NULL;
  if (!o) return pt__pkvm_push(m, NULL);
  memcpy(o->s, m->b + m->pos, (size_t)n);
  o->s[n] = 0;
  o->slen = (size_t)n;
  m->pos += (size_t)n;
  return pt__pkvm_push(m, o);
}

static pt_status str_obj_at(pt__pkvm *m, pt__pk_kind kind, const uint8_t *src, size_t n) {
  pt__pk *o = pt__pkvm_mk(m, kind);
  if (o && !(o->s = pt__malloc(n + 1))) o = NULL;
  if (!o) return pt__pkvm_push(m, NULL);
  memcpy(o->s, src, n);
  o->s[n] = 0;
  o->slen = n;
  return pt__pkvm_push(m, o);
}

static pt_status int_obj(pt__pkvm *m, int64_t v) {
  pt__pk *o = pt__pkvm_mk(m, PK_INT);
  if (o) o->i = v;
  return pt__pkvm_push(m, o);
}

static uint64_t rd_le(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

static pt_status memo_put(pt__pkvm *m, uint64_t idx) {
  if (!m->sp) return pt__pkvm_bad(m, "memo put with an empty stack");
  if (idx >= MAX_MEMO) return pt__pkvm_bad(m, "memo index %llu too large", (unsigned long long)idx);
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

static pt_status memo_get(pt__pkvm *m, uint64_t idx) {
  if (idx >= m->n_memo || !m->memo[idx]) return pt__pkvm_bad(m, "memo index %llu was never set", (unsigned long long)idx);
  return pt__pkvm_push(m, m->memo[idx]);
}

static pt_status set_items(pt__pkvm *m, pt__pk *target, pt__pk **kv, int n) {
  if (n % 2) return pt__pkvm_bad(m, "odd number of items for a dict");
  if (target->kind == PK_OBJECT) return PT_OK; /* e.g. a defaultdict: not modelled, contents dropped */
  if (target->kind != PK_DICT) return pt__pkvm_bad(m, "SETITEM on something that is not a dict");
  for (int i = 0; i < n; i++)
    if (pt__pkvm_add(target, kv[i])) return pt__error(PT_ENOMEM, "%s: pickle: out of memory", m->what);
  return PT_OK;
}

static pt_status append_items(pt__pkvm *m, pt__pk *target, pt__pk **v, int n) {
  if (target->kind == PK_OBJECT) return PT_OK;
  if (target->kind != PK_LIST) return pt__pkvm_bad(m, "APPEND on something that is not a list");
  for (int i = 0; i < n; i++)
    if (pt__pkvm_add(target, v[i])) return pt__error(PT_ENOMEM, "%s: pickle: out of memory", m->what);
  return PT_OK;
}

/* Opcodes: PROTO, FRAME, the mark, POP, POP_MARK, DUP. */
static pt_status op_stack(pt__pkvm *m, uint8_t op) {
  pt__pk *a;
  int first;
  switch (op) {
    case 0x80: /* PROTO */
      if (!need(m, 1)) return pt__pkvm_bad(m, "truncated PROTO");
      if (m->b[m->pos] > 5) return pt__pkvm_bad(m, "protocol %u", m->b[m->pos]);
      m->pos++;
      return PT_OK;
    case 0x95: /* FRAME */
      if (!need(m, 8)) return pt__pkvm_bad(m, "truncated FRAME");
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
    case '0': return pt__pkvm_pop(m, &a);
    case '1': return pop_mark(m, &first) == PT_OK ? (m->sp = first, PT_OK) : PT_EFORMAT;
    case '2':
      if (!m->sp) return pt__pkvm_bad(m, "DUP with an empty stack");
      return pt__pkvm_push(m, m->stack[m->sp - 1]);
    default: return pt__pkvm_bad(m, "opcode 0x%02x misrouted", op);
  }
}

/* Opcodes: strings and bytes. */
static pt_status op_string(pt__pkvm *m, uint8_t op) {
  switch (op) {
    case 'X': case 'T': case 'B': /* BINUNICODE, BINSTRING, BINBYTES: 4-byte length */
      if (!need(m, 4)) return pt__pkvm_bad(m, "truncated string length");
      m->pos += 4;
      return str_obj(m, op == 'B' ? PK_BYTES : PK_STR, rd_le(m->b + m->pos - 4, 4));
    case 0x8c: case 'U': case 'C': /* SHORT_BINUNICODE, SHORT_BINSTRING, SHORT_BINBYTES */
      if (!need(m, 1)) return pt__pkvm_bad(m, "truncated string length");
      m->pos += 1;
      return str_obj(m, op == 'C' ? PK_BYTES : PK_STR, m->b[m->pos - 1]);
    case 0x8d: case 0x8e: /* BINUNICODE8, BINBYTES8 */
      if (!need(m, 8)) return pt__pkvm_bad(m, "truncated string length");
      m->pos += 8;
      return str_obj(m, op == 0x8e ? PK_BYTES : PK_STR, rd_le(m->b + m->pos - 8, 8));
    default: return pt__pkvm_bad(m, "opcode 0x%02x misrouted", op);
  }
}

/* Opcodes: integers, floats, None and booleans. */
static pt_status op_number(pt__pkvm *m, uint8_t op) {
  pt__pk *o;
  switch (op) {
    case 'J':
      if (!need(m, 4)) return pt__pkvm_bad(m, "truncated BININT");
      m->pos += 4;
      return int_obj(m, (int32_t)(uint32_t)rd_le(m->b + m->pos - 4, 4));
    case 'K':
      if (!need(m, 1)) return pt__pkvm_bad(m, "truncated BININT1");
      return int_obj(m, m->b[m->pos++]);
    case 'M':
      if (!need(m, 2)) return pt__pkvm_bad(m, "truncated BININT2");
      m->pos += 2;
      return int_obj(m, (int64_t)rd_le(m->b + m->pos - 2, 2));
    case 0x8a: { /* LONG1: little-endian two's complement */
      if (!need(m, 1)) return pt__pkvm_bad(m, "truncated LONG1");
      int n = m->b[m->pos++];
      if (!need(m, (size_t)n)) return pt__pkvm_bad(m, "truncated LONG1");
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
      if (!need(m, 8)) return pt__pkvm_bad(m, "truncated BINFLOAT");
      uint64_t bits = 0;
      for (int i = 0; i < 8; i++) bits = bits << 8 | m->b[m->pos + i];
      m->pos += 8;
      o = pt__pkvm_mk(m, PK_FLOAT);
      if (o) memcpy(&o->f, &bits, 8);
      return pt__pkvm_push(m, o);
    }
    case 'N': return pt__pkvm_push(m, pt__pkvm_mk(m, PK_NONE));
    case 0x88: case 0x89:
      o = pt__pkvm_mk(m, PK_BOOL);
      if (o) o->i = op == 0x88;
      return pt__pkvm_push(m, o);
    default: return pt__pkvm_bad(m, "opcode 0x%02x misrouted", op);
  }
}

/* Opcodes: tuples, lists, dicts and their items. */
static pt_status op_container(pt__pkvm *m, uint8_t op) {
  pt__pk *a, *o;
  int first;
  switch (op) {
    case '}': return pt__pkvm_push(m, pt__pkvm_mk(m, PK_DICT));
    case ']':
    case 0x8f: return pt__pkvm_push(m, pt__pkvm_mk(m, PK_LIST)); /* EMPTY_LIST, EMPTY_SET */
    case ')': return pt__pkvm_push(m, pt__pkvm_mk(m, PK_TUPLE));
    case 't': case 'l': /* TUPLE, LIST */
      PT__TRY(pop_mark(m, &first));
      o = pt__pkvm_mk(m, op == 't' ? PK_TUPLE : PK_LIST);
      for (int i = first; o && i < m->sp; i++)
        if (pt__pkvm_add(o, m->stack[i])) o = NULL;
      m->sp = first;
      return pt__pkvm_push(m, o);
    case 0x85: case 0x86: case 0x87: { /* TUPLE1..3 */
      int n = op - 0x84;
      int floor = m->n_marks ? m->marks[m->n_marks - 1] : 0;
      if (m->sp - floor < n) return pt__pkvm_bad(m, "stack underflow");
      o = pt__pkvm_mk(m, PK_TUPLE);
      for (int i = m->sp - n; o && i < m->sp; i++)
        if (pt__pkvm_add(o, m->stack[i])) o = NULL;
      m->sp -= n;
      return pt__pkvm_push(m, o);
    }
    case 'd': /* DICT */
      PT__TRY(pop_mark(m, &first));
      o = pt__pkvm_mk(m, PK_DICT);
      if (!o) return pt__pkvm_push(m, NULL);
      PT__TRY(set_items(m, o, m->stack + first, m->sp - first));
      m->sp = first;
      return pt__pkvm_push(m, o);
    case 's': {
      pt__pk *kv[2];
      PT__TRY(pt__pkvm_pop(m, &kv[1]));
      PT__TRY(pt__pkvm_pop(m, &kv[0]));
      if (m->sp <= (m->n_marks ? m->marks[m->n_marks - 1] : 0)) return pt__pkvm_bad(m, "SETITEM without a dict");
      return set_items(m, m->stack[m->sp - 1], kv, 2);
    }
    case 'u':
      PT__TRY(pop_mark(m, &first));
      if (first < 1 || (m->n_marks && first <= m->marks[m->n_marks - 1])) return pt__pkvm_bad(m, "SETITEMS without a dict");
      PT__TRY(set_items(m, m->stack[first - 1], m->stack + first, m->sp - first));
      m->sp = first;
      return PT_OK;
    case 'a':
      PT__TRY(pt__pkvm_pop(m, &a));
      if (m->sp <= (m->n_marks ? m->marks[m->n_marks - 1] : 0)) return pt__pkvm_bad(m, "APPEND without a list");
      return append_items(m, m->stack[m->sp - 1], &a, 1);
    case 'e': case 0x90: /* APPENDS, ADDITEMS */
      PT__TRY(pop_mark(m, &first));
      if (first < 1 || (m->n_marks && first <= m->marks[m->n_marks - 1])) return pt__pkvm_bad(m, "APPENDS without a list");
      PT__TRY(append_items(m, m->stack[first - 1], m->stack + first, m->sp - first));
      m->sp = first;
      return PT_OK;
    default: return pt__pkvm_bad(m, "opcode 0x%02x misrouted", op);
  }
}

/* Opcodes: the memo (PUT and GET). */
static pt_status op_memo(pt__pkvm *m, uint8_t op) {
  switch (op) {
    case 'q':
      if (!need(m, 1)) return pt__pkvm_bad(m, "truncated BINPUT");
      return memo_put(m, m->b[m->pos++]);
    case 'r':
      if (!need(m, 4)) return pt__pkvm_bad(m, "truncated LONG_BINPUT");
      m->pos += 4;
      return memo_put(m, rd_le(m->b + m->pos - 4, 4));
    case 0x94: return memo_put(m, m->n_memo);
    case 'h':
      if (!need(m, 1)) return pt__pkvm_bad(m, "truncated BINGET");
      return memo_get(m, m->b[m->pos++]);
    case 'j':
      if (!need(m, 4)) return pt__pkvm_bad(m, "truncated LONG_BINGET");
      m->pos += 4;
      return memo_get(m, rd_le(m->b + m->pos - 4, 4));
    default: return pt__pkvm_bad(m, "opcode 0x%02x misrouted", op);
  }
}

/* Opcodes: globals, REDUCE, objects, BUILD and persistent ids. */
static pt_status op_object(pt__pkvm *m, uint8_t op) {
  pt__pk *a, *b, *o;
  switch (op) {
    case 'c': { /* GLOBAL "module\nname\n" */
      const uint8_t *s = m->b + m->pos, *e1 = memchr(s, '\n', m->len - m->pos);
      const uint8_t *e2 = e1 ? memchr(e1 + 1, '\n', (size_t)(m->b + m->len - e1 - 1)) : NULL;
      if (!e2 || e2 - s > 1000) return pt__pkvm_bad(m, "malformed GLOBAL");
      o = pt__pkvm_mk(m, PK_GLOBAL);
      if (o && !(o->s = pt__malloc((size_t)(e2 - s) + 1))) o = NULL;
      if (o) {
        memcpy(o->s, s, (size_t)(e2 - s));
        o->s[e1 - s] = '.';
        o->s[e2 - s] = 0;
        o->slen = (size_t)(e2 - s);
      }
      m->pos += (size_t)(e2 - s) + 1;
      return pt__pkvm_push(m, o);
    }
    case 0x93: /* STACK_GLOBAL */
      PT__TRY(pt__pkvm_pop(m, &b));
      PT__TRY(pt__pkvm_pop(m, &a));
      if (a->kind != PK_STR || b->kind != PK_STR) return pt__pkvm_bad(m, "STACK_GLOBAL of non-strings");
      o = pt__pkvm_mk(m, PK_GLOBAL);
      if (o && !(o->s = pt__malloc(a->slen + b->slen + 2))) o = NULL;
      if (o) o->slen = (size_t)sprintf(o->s, "%s.%s", a->s, b->s);
      return pt__pkvm_push(m, o);
    case 'R': return pt__pkvm_reduce(m);
    case 0x81: case 0x92: /* NEWOBJ, NEWOBJ_EX: an object we do not model */
      if (op == 0x92) PT__TRY(pt__pkvm_pop(m, &b));
      PT__TRY(pt__pkvm_pop(m, &a));
      PT__TRY(pt__pkvm_pop(m, &b));
      o = pt__pkvm_mk(m, PK_OBJECT);
      if (o && (pt__pkvm_add(o, b) || pt__pkvm_add(o, a))) o = NULL;
      return pt__pkvm_push(m, o);
    case 'b': /* BUILD: state (e.g. a state_dict's _metadata) is not needed */
      PT__TRY(pt__pkvm_pop(m, &a));
      if (!m->sp) return pt__pkvm_bad(m, "BUILD with an empty stack");
      return PT_OK;
    case 'Q': return pt__pkvm_persid(m);
    default: return pt__pkvm_bad(m, "opcode 0x%02x misrouted", op);
  }
}

/* One opcode: the groups above do the work. */
static pt_status step(pt__pkvm *m, int *done) {
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
      return pt__pkvm_bad(m, "unknown or unsupported opcode 0x%02x", op);
  }
}

pt_status pt__pickle_load(const void *data, size_t len, const char *what, pt__pickle **out, pt__pk **result) {
  *out = NULL;
  *result = NULL;
  pt__pkvm m = {0};
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
      s = pt__pkvm_bad(&m, "no STOP opcode (truncated)");
      break;
    }
    s = step(&m, &done);
  }
  if (s == PT_OK && m.sp != 1) s = pt__pkvm_bad(&m, "%d values on the stack at STOP", m.sp);
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
