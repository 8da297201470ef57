/* See lanes_backend.h. */
#include "lanes_backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend_iface.h"
#include "core/error.h"

#define MAX_LANES 8

typedef enum { IT_OP, IT_MARK, IT_WAIT } it_kind;
typedef enum { OP_COPY, OP_CONV, OP_LINEAR, OP_ACT, OP_POOL, OP_BN, OP_ADD, OP_SOFTMAX, OP_QUANT, OP_NOISE, OP_F16 } op_kind;

/* One queued item with copies of its arguments (pointers are backend memory, or `owned` host
 * bytes for an upload). */
typedef struct item {
  it_kind kind;
  op_kind op;
  int64_t seq;  /* queueing order over all lanes */
  int lane;     /* IT_WAIT: the lane waited for */
  int64_t mark; /* IT_MARK: this lane's mark; IT_WAIT: the mark waited for */
  pt_conv_desc cd;
  pt_pool_desc pd;
  int n, a, b, fp16;
  pt_act type;
  int64_t count;
  float f0, f1;
  uint64_t u0, u1;
  const float *x, *x2, *w, *bias, *mean, *var;
  float *y;
  void *dst;
  const void *src;
  size_t bytes;
  void *owned;
} item;

typedef struct queue {
  item *v;
  int head, len, cap;
} queue;

typedef struct lanes_ctx {
  pt_backend *cpu;
  int n_lanes, cur, ignore_waits;
  uint64_t rng;
  int64_t seq;
  int64_t marks[MAX_LANES]; /* marks given per lane */
  int64_t done[MAX_LANES];  /* mark each lane has reached */
  queue q[MAX_LANES];
  lanes_stats st;
  char desc[64];
} lanes_ctx;

static const pt_backend_iface *CPU(lanes_ctx *c) { return c->cpu->iface; }

static uint64_t next_rand(lanes_ctx *c) {
  c->rng ^= c->rng << 13;
  c->rng ^= c->rng >> 7;
  c->rng ^= c->rng << 17;
  return c->rng;
}

static pt_status push(lanes_ctx *c, item it) {
  queue *q = &c->q[c->cur];
  if (q->len == q->cap) {
    int cap = q->cap ? 2 * q->cap : 64;
    item *nv = realloc(q->v, (size_t)cap * sizeof *nv);
    if (!nv) {
      free(it.owned);
      return pt__error(PT_ENOMEM, "lanes backend: out of memory");
    }
    q->v = nv;
    q->cap = cap;
  }
  it.seq = c->seq++;
  q->v[q->len++] = it;
  return PT_OK;
}

static pt_status run_item(lanes_ctx *c, int lane, item *it) {
  void *k = c->cpu->ctx;
  const pt_backend_iface *f = CPU(c);
  switch (it->kind) {
    case IT_MARK: c->done[lane] = it->mark; return PT_OK;
    case IT_WAIT: return PT_OK;
    case IT_OP: break;
  }
  c->st.ops[lane]++;
  switch (it->op) {
    case OP_COPY: {
      pt_status s = f->copy(k, it->dst, it->owned ? it->owned : it->src, it->bytes);
      free(it->owned);
      it->owned = NULL;
      return s;
    }
    case OP_CONV: return f->conv2d(k, &it->cd, it->x, it->w, it->bias, it->y);
    case OP_LINEAR: return f->linear(k, it->n, it->a, it->b, it->fp16, it->x, it->w, it->bias, it->y);
    case OP_ACT: return f->activation(k, it->type, it->count, it->fp16, it->x, it->y);
    case OP_POOL: return f->pool2d(k, &it->pd, it->x, it->y);
    case OP_BN:
      return f->batchnorm2d(k, it->n, it->a, it->count, it->f0, it->fp16, it->x, it->w, it->bias, it->mean, it->var,
                            it->y);
    case OP_ADD: return f->add(k, it->count, it->fp16, it->x, it->x2, it->y);
    case OP_SOFTMAX: return f->softmax(k, it->n, it->a, it->fp16, it->x, it->y);
    case OP_QUANT: return f->quantize(k, it->count, it->f0, it->f1, it->x, it->y);
    case OP_NOISE: return f->promise_noise(k, it->count, it->f0, it->u0, it->u1, it->x, it->y);
    case OP_F16: return f->round_f16(k, it->count, it->x, it->y);
  }
  return pt__error(PT_EINVAL, "lanes backend: unknown item");
}

/* Runs everything queued, one item at a time from a random lane whose next item may run. */
static pt_status drain(lanes_ctx *c) {
  pt_status s = PT_OK;
  for (;;) {
    int cand[MAX_LANES], nc = 0, pending = 0;
    int64_t oldest = INT64_MAX;
    for (int l = 0; l < c->n_lanes; l++) {
      queue *q = &c->q[l];
      if (q->head == q->len) continue;
      pending = 1;
      const item *it = &q->v[q->head];
      if (it->seq < oldest) oldest = it->seq;
      if (it->kind == IT_WAIT && c->done[it->lane] < it->mark) continue;
      cand[nc++] = l;
    }
    if (!pending) break;
    if (!nc) {
      s = pt__error(PT_EBACKEND, "lanes backend: every lane waits for another (deadlock)");
      break;
    }
    int l = cand[next_rand(c) % (uint64_t)nc];
    item *it = &c->q[l].v[c->q[l].head++];
    c->st.reorders += it->seq > oldest;
    if (s == PT_OK) s = run_item(c, l, it); /* after an error the rest is only dropped */
    free(it->owned);
  }
  for (int l = 0; l < c->n_lanes; l++) c->q[l].head = c->q[l].len = 0;
  return s;
}

static void l_destroy(void *ctx) {
  lanes_ctx *c = ctx;
  drain(c);
  for (int l = 0; l < MAX_LANES; l++) free(c->q[l].v);
  pt_backend_free(c->cpu);
  free(c);
}
static const char *l_describe(void *ctx) { return ((lanes_ctx *)ctx)->desc; }
static pt_status l_alloc(void *ctx, size_t bytes, void **ptr) {
  lanes_ctx *c = ctx;
  return CPU(c)->alloc(c->cpu->ctx, bytes, ptr);
}
static void l_release(void *ctx, void *ptr) {
  lanes_ctx *c = ctx;
  drain(c);
  CPU(c)->release(c->cpu->ctx, ptr);
}
static pt_status l_upload(void *ctx, void *dst, const void *src, size_t bytes) {
  item it = {.kind = IT_OP, .op = OP_COPY, .dst = dst, .bytes = bytes, .owned = malloc(bytes ? bytes : 1)};
  if (!it.owned) return pt__error(PT_ENOMEM, "lanes backend: out of memory");
  memcpy(it.owned, src, bytes); /* like a pageable upload: src may be reused on return */
  return push(ctx, it);
}
static pt_status l_sync(void *ctx) { return drain(ctx); }
static pt_status l_download(void *ctx, void *dst, const void *src, size_t bytes) {
  lanes_ctx *c = ctx;
  PT__TRY(drain(c));
  return CPU(c)->download(c->cpu->ctx, dst, src, bytes);
}
static pt_status l_copy(void *ctx, void *dst, const void *src, size_t bytes) {
  return push(ctx, (item){.kind = IT_OP, .op = OP_COPY, .dst = dst, .src = src, .bytes = bytes});
}
static pt_status l_conv(void *ctx, const pt_conv_desc *d, const float *x, const float *w, const float *b, float *y) {
  return push(ctx, (item){.kind = IT_OP, .op = OP_CONV, .cd = *d, .x = x, .w = w, .bias = b, .y = y});
}
static pt_status l_linear(void *ctx, int n, int in, int out, int fp16, const float *x, const float *w, const float *b,
                          float *y) {
  return push(ctx, (item){.kind = IT_OP, .op = OP_LINEAR, .n = n, .a = in, .b = out, .fp16 = fp16, .x = x, .w = w,
                          .bias = b, .y = y});
}
static pt_status l_act(void *ctx, pt_act type, int64_t count, int fp16, const float *x, float *y) {
  return push(ctx, (item){.kind = IT_OP, .op = OP_ACT, .type = type, .count = count, .fp16 = fp16, .x = x, .y = y});
}
static pt_status l_pool(void *ctx, const pt_pool_desc *d, const float *x, float *y) {
  return push(ctx, (item){.kind = IT_OP, .op = OP_POOL, .pd = *d, .x = x, .y = y});
}
static pt_status l_bn(void *ctx, int n, int ch, int64_t hw, float eps, int fp16, const float *x, const float *w,
                      const float *b, const float *mean, const float *var, float *y) {
  return push(ctx, (item){.kind = IT_OP, .op = OP_BN, .n = n, .a = ch, .count = hw, .f0 = eps, .fp16 = fp16, .x = x,
                          .w = w, .bias = b, .mean = mean, .var = var, .y = y});
}
static pt_status l_add(void *ctx, int64_t count, int fp16, const float *a, const float *b, float *y) {
  return push(ctx, (item){.kind = IT_OP, .op = OP_ADD, .count = count, .fp16 = fp16, .x = a, .x2 = b, .y = y});
}
static pt_status l_softmax(void *ctx, int n, int ch, int fp16, const float *x, float *y) {
  return push(ctx, (item){.kind = IT_OP, .op = OP_SOFTMAX, .n = n, .a = ch, .fp16 = fp16, .x = x, .y = y});
}
static pt_status l_quant(void *ctx, int64_t count, float lo, float hi, const float *x, float *y) {
  return push(ctx, (item){.kind = IT_OP, .op = OP_QUANT, .count = count, .f0 = lo, .f1 = hi, .x = x, .y = y});
}
static pt_status l_noise(void *ctx, int64_t count, float scale, uint64_t key, uint64_t first, const float *x,
                         float *y) {
  return push(ctx, (item){.kind = IT_OP, .op = OP_NOISE, .count = count, .f0 = scale, .u0 = key, .u1 = first, .x = x,
                          .y = y});
}
static pt_status l_f16(void *ctx, int64_t count, const float *x, float *y) {
  return push(ctx, (item){.kind = IT_OP, .op = OP_F16, .count = count, .x = x, .y = y});
}
static pt_status l_minmax(void *ctx, int64_t count, const float *x, float range[2]) {
  lanes_ctx *c = ctx;
  PT__TRY(drain(c));
  return CPU(c)->minmax(c->cpu->ctx, count, x, range);
}
static int l_lanes(void *ctx) { return ((lanes_ctx *)ctx)->n_lanes; }
static pt_status l_use_lane(void *ctx, int lane) {
  lanes_ctx *c = ctx;
  if (lane < 0 || lane >= c->n_lanes) return pt__error(PT_EINVAL, "lanes backend: lane %d of %d", lane, c->n_lanes);
  c->cur = lane;
  return PT_OK;
}
static pt_status l_mark(void *ctx, int64_t *mark) {
  lanes_ctx *c = ctx;
  *mark = ++c->marks[c->cur];
  return push(c, (item){.kind = IT_MARK, .mark = *mark});
}
static pt_status l_wait(void *ctx, int lane, int64_t mark) {
  lanes_ctx *c = ctx;
  if (lane < 0 || lane >= c->n_lanes || mark > c->marks[lane] || lane == c->cur)
    return pt__error(PT_EINVAL, "lanes backend: lane %d waits for mark %lld of lane %d, which has given %lld", c->cur,
                     (long long)mark, lane, lane >= 0 && lane < c->n_lanes ? (long long)c->marks[lane] : -1LL);
  c->st.waits++;
  if (c->ignore_waits) return PT_OK;
  return push(c, (item){.kind = IT_WAIT, .lane = lane, .mark = mark});
}

static const pt_backend_iface lanes_iface = {
    .name = "test-lanes",
    .destroy = l_destroy,
    .describe = l_describe,
    .alloc = l_alloc,
    .release = l_release,
    .upload = l_upload,
    .download = l_download,
    .synchronize = l_sync,
    .copy = l_copy,
    .conv2d = l_conv,
    .linear = l_linear,
    .activation = l_act,
    .pool2d = l_pool,
    .batchnorm2d = l_bn,
    .add = l_add,
    .softmax = l_softmax,
    .quantize = l_quant,
    .promise_noise = l_noise,
    .round_f16 = l_f16,
    .minmax = l_minmax,
    .lanes = l_lanes,
    .use_lane = l_use_lane,
    .lane_mark = l_mark,
    .lane_wait = l_wait,
};

pt_status lanes_backend_create(int lanes, uint64_t seed, int ignore_waits, pt_backend **out) {
  *out = NULL;
  if (lanes < 1 || lanes > MAX_LANES) return pt__error(PT_EINVAL, "lanes backend: %d lanes", lanes);
  lanes_ctx *c = calloc(1, sizeof *c);
  pt_backend *be = calloc(1, sizeof *be);
  if (!c || !be) {
    free(c), free(be);
    return pt__error(PT_ENOMEM, "lanes backend: out of memory");
  }
  pt_status s = pt_backend_create("cpu", 2, &c->cpu);
  if (s != PT_OK) {
    free(c), free(be);
    return s;
  }
  c->n_lanes = lanes;
  c->ignore_waits = ignore_waits;
  c->rng = seed * 0x9E3779B97F4A7C15ull + 1;
  snprintf(c->desc, sizeof c->desc, "test lanes (%d) over the CPU backend", lanes);
  be->iface = &lanes_iface;
  be->ctx = c;
  *out = be;
  return PT_OK;
}

void lanes_backend_stats(pt_backend *be, lanes_stats *st) { *st = ((lanes_ctx *)be->ctx)->st; }
