/* PredTuner's model zoo rebuilt as graphs. Each builder mirrors the PyTorch module tree: a
 * Sequential prefix plus a running child index gives the dotted names ("convs.3"), and the order of
 * pt__g_* calls is PyTorch's execution order. */
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "graph/graph_internal.h"
#include "predtuner/zoo.h"

/* A Sequential being filled: prefix "convs" and the index of its next child. */
typedef struct seq {
  char prefix[128];
  int next;
} seq;

static const char *child(seq *s, char *buf) {
  snprintf(buf, 128, "%s.%d", s->prefix, s->next++);
  return buf;
}

/* PredTuner's make_conv_pool_activ: Conv2d, then MaxPool2d if pool > 0, then the activation. */
static int conv_pool_activ(pt_graph *g, seq *s, int x, int cin, int cout, int k, pt_op_type act, int pool,
                           int pool_stride, int pad, int stride, int bias) {
  char b[128];
  x = pt__g_conv(g, child(s, b), x, cin, cout, k, stride, pad, 1, bias);
  if (pool) x = pt__g_pool(g, child(s, b), x, PT_OP_MAXPOOL2D, pool, pool_stride ? pool_stride : pool, 0);
  if (act != PT_OP__COUNT) x = pt__g_act(g, child(s, b), x, act);
  return x;
}
#define NOACT PT_OP__COUNT

static int linear(pt_graph *g, seq *s, int x, int nin, int nout) {
  char b[128];
  return pt__g_linear(g, child(s, b), x, nin, nout);
}
static int act(pt_graph *g, seq *s, int x, pt_op_type t) {
  char b[128];
  return pt__g_act(g, child(s, b), x, t);
}

static void lenet(pt_graph *g) {
  seq c = {"convs", 0}, l = {"linears", 0};
  int x = conv_pool_activ(g, &c, -1, 1, 32, 5, PT_OP_TANH, 2, 0, 2, 1, 1);
  x = conv_pool_activ(g, &c, x, 32, 64, 5, PT_OP_TANH, 2, 0, 2, 1, 1);
  x = pt__g_flatten(g, x);
  x = linear(g, &l, x, 7 * 7 * 64, 1024);
  x = act(g, &l, x, PT_OP_TANH);
  x = linear(g, &l, x, 1024, 10);
  act(g, &l, x, PT_OP_TANH);
}

static void alexnet(pt_graph *g) {
  seq c = {"convs", 0}, l = {"linears", 0};
  int x = conv_pool_activ(g, &c, -1, 3, 64, 11, PT_OP_TANH, 2, 0, 5, 1, 1);
  x = conv_pool_activ(g, &c, x, 64, 192, 5, PT_OP_TANH, 2, 0, 2, 1, 1);
  x = conv_pool_activ(g, &c, x, 192, 384, 3, PT_OP_TANH, 0, 0, 1, 1, 1);
  x = conv_pool_activ(g, &c, x, 384, 256, 3, PT_OP_TANH, 0, 0, 1, 1, 1);
  x = conv_pool_activ(g, &c, x, 256, 256, 3, PT_OP_TANH, 2, 0, 1, 1, 1);
  x = pt__g_flatten(g, x);
  linear(g, &l, x, 4096, 10);
}

static void alexnet2(pt_graph *g) {
  seq c = {"convs", 0}, l = {"linears", 0};
  static const int ch[7] = {3, 32, 32, 64, 64, 128, 128};
  int x = -1;
  for (int i = 0; i < 6; i++) x = conv_pool_activ(g, &c, x, ch[i], ch[i + 1], 3, PT_OP_TANH, (i % 2) ? 2 : 0, 0, 1, 1, 1);
  x = pt__g_flatten(g, x);
  linear(g, &l, x, 2048, 10);
}

static void alexnet_imagenet(pt_graph *g) {
  seq c = {"convs", 0}, l = {"linears", 0};
  int x = conv_pool_activ(g, &c, -1, 3, 64, 11, PT_OP_RELU, 3, 2, 2, 4, 1);
  x = conv_pool_activ(g, &c, x, 64, 192, 5, PT_OP_RELU, 3, 2, 2, 1, 1);
  x = conv_pool_activ(g, &c, x, 192, 384, 3, PT_OP_RELU, 0, 0, 1, 1, 1);
  x = conv_pool_activ(g, &c, x, 384, 256, 3, PT_OP_RELU, 0, 0, 1, 1, 1);
  x = conv_pool_activ(g, &c, x, 256, 256, 3, PT_OP_RELU, 3, 2, 1, 1, 1);
  x = pt__g_flatten(g, x);
  x = linear(g, &l, x, 9216, 4096);
  x = act(g, &l, x, PT_OP_RELU);
  x = linear(g, &l, x, 4096, 4096);
  x = act(g, &l, x, PT_OP_RELU);
  linear(g, &l, x, 4096, 1000);
}

/* VGG16: 13 conv+ReLU, MaxPool2d(2) after convs 2, 4, 7, 10, 13; then Linear/ReLU alternating. */
static void vgg16(pt_graph *g, const int *lin, int nlin) {
  static const int ch[14] = {3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512};
  static const int pool_after[13] = {0, 1, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1};
  seq c = {"convs", 0}, l = {"linears", 0};
  int x = -1;
  for (int i = 0; i < 13; i++)
    x = conv_pool_activ(g, &c, x, ch[i], ch[i + 1], 3, PT_OP_RELU, pool_after[i] ? 2 : 0, 0, 1, 1, 1);
  x = pt__g_flatten(g, x);
  for (int i = 0; i + 1 < nlin; i++) {
    x = linear(g, &l, x, lin[i], lin[i + 1]);
    if (i + 2 < nlin) x = act(g, &l, x, PT_OP_RELU);
  }
}
static void vgg16_cifar10(pt_graph *g) { vgg16(g, (const int[]){512, 512, 10}, 3); }
static void vgg16_cifar100(pt_graph *g) { vgg16(g, (const int[]){512, 512, 100}, 3); }
static void vgg16_imagenet(pt_graph *g) { vgg16(g, (const int[]){25088, 4096, 4096, 1000}, 4); }

/* ResNet18 (CIFAR) BasicBlock: mainline (conv-ReLU-conv), relu1, optional 1x1 stride-2 shortcut.
 * Registration order: mainline.*, relu1, shortcut.0; execution: mainline, shortcut, add, relu1. */
static int basic_block(pt_graph *g, seq *parent, int x, int ins, int outs, int shortcut) {
  char name[128], b[128];
  child(parent, name);
  int stride = shortcut ? 2 : 1;
  seq m;
  snprintf(m.prefix, sizeof m.prefix, "%s.mainline", name);
  m.next = 0;
  int y = conv_pool_activ(g, &m, x, ins, outs, 3, PT_OP_RELU, 0, 0, 1, stride, 1);
  y = conv_pool_activ(g, &m, y, outs, outs, 3, NOACT, 0, 0, 1, 1, 1);
  int relu_reg = pt__g_reserve_reg(g);
  int sc = x;
  if (shortcut) {
    seq s;
    snprintf(s.prefix, sizeof s.prefix, "%s.shortcut", name);
    s.next = 0;
    sc = conv_pool_activ(g, &s, x, ins, outs, 1, NOACT, 0, 0, 0, stride, 1);
  }
  snprintf(b, sizeof b, "%s+add", name);
  y = pt__g_add(g, b, y, sc);
  snprintf(b, sizeof b, "%s.relu1", name);
  y = pt__g_act(g, b, y, PT_OP_RELU);
  pt__g_set_reg(g, y, relu_reg);
  return y;
}

static void resnet18(pt_graph *g) {
  seq c = {"convs", 0}, l = {"linears", 0};
  char b[128];
  int x = conv_pool_activ(g, &c, -1, 3, 16, 3, PT_OP_RELU, 0, 0, 1, 1, 1);
  static const int ins[9] = {16, 16, 16, 16, 32, 32, 32, 64, 64}, outs[9] = {16, 16, 16, 32, 32, 32, 64, 64, 64};
  for (int i = 0; i < 9; i++) x = basic_block(g, &c, x, ins[i], outs[i], ins[i] != outs[i]);
  x = pt__g_pool(g, child(&c, b), x, PT_OP_AVGPOOL2D, 8, 8, 0);
  x = pt__g_flatten(g, x);
  linear(g, &l, x, 64, 10);
}

/* ResNet50 Bottleneck (expansion 4, BatchNorm eps 1e-3): mainline conv1x1-BN-ReLU-conv3x3-BN-ReLU-
 * conv1x1-BN, relu1, and a conv1x1+BN shortcut when the shape changes. */
static int bottleneck(pt_graph *g, seq *parent, int x, int in_planes, int planes, int stride) {
  char name[128], b[128];
  child(parent, name);
  seq m;
  snprintf(m.prefix, sizeof m.prefix, "%s.mainline", name);
  m.next = 0;
  int y = conv_pool_activ(g, &m, x, in_planes, planes, 1, NOACT, 0, 0, 0, stride, 1);
  y = pt__g_bn(g, child(&m, b), y, planes, 1e-3f);
  y = act(g, &m, y, PT_OP_RELU);
  y = conv_pool_activ(g, &m, y, planes, planes, 3, NOACT, 0, 0, 1, 1, 1);
  y = pt__g_bn(g, child(&m, b), y, planes, 1e-3f);
  y = act(g, &m, y, PT_OP_RELU);
  y = conv_pool_activ(g, &m, y, planes, 4 * planes, 1, NOACT, 0, 0, 0, 1, 1);
  y = pt__g_bn(g, child(&m, b), y, 4 * planes, 1e-3f);
  int relu_reg = pt__g_reserve_reg(g);
  int sc = x;
  if (stride != 1 || in_planes != 4 * planes) {
    seq s;
    snprintf(s.prefix, sizeof s.prefix, "%s.shortcut", name);
    s.next = 0;
    sc = conv_pool_activ(g, &s, x, in_planes, 4 * planes, 1, NOACT, 0, 0, 0, stride, 1);
    sc = pt__g_bn(g, child(&s, b), sc, 4 * planes, 1e-3f);
  }
  snprintf(b, sizeof b, "%s+add", name);
  y = pt__g_add(g, b, y, sc);
  snprintf(b, sizeof b, "%s.relu1", name);
  y = pt__g_act(g, b, y, PT_OP_RELU);
  pt__g_set_reg(g, y, relu_reg);
  return y;
}

static void resnet50(pt_graph *g) {
  seq c = {"convs", 0}, l = {"linears", 0};
  char b[128];
  int x = conv_pool_activ(g, &c, -1, 3, 64, 7, PT_OP_RELU, 3, 2, 3, 2, 1);
  x = pt__g_bn(g, child(&c, b), x, 64, 1e-3f);
  static const int stages[4][3] = {{64, 3, 1}, {128, 4, 2}, {256, 6, 2}, {512, 3, 2}}; /* planes, blocks, stride */
  int in_planes = 64;
  for (int s = 0; s < 4; s++)
    for (int i = 0; i < stages[s][1]; i++) {
      x = bottleneck(g, &c, x, in_planes, stages[s][0], i == 0 ? stages[s][2] : 1);
      in_planes = 4 * stages[s][0];
    }
  x = pt__g_pool(g, child(&c, b), x, PT_OP_AVGPOOL2D, 7, 7, 0);
  x = pt__g_flatten(g, x);
  linear(g, &l, x, 2048, 1000);
}

/* MobileNet (CIFAR): 13 blocks of [conv (no bias), BN, ReLU, depthwise 3x3 conv, BN, ReLU], each block
 * its own Sequential ("convs.4.3"), then conv1x1-BN-ReLU and AvgPool2d(2). */
static void mobilenet(pt_graph *g) {
  static const int blk[13][4] = {{3, 32, 3, 1},     {32, 64, 1, 2},    {64, 128, 1, 1},   {128, 128, 1, 2},
                                 {128, 256, 1, 1},  {256, 256, 1, 2},  {256, 512, 1, 1},  {512, 512, 1, 1},
                                 {512, 512, 1, 1},  {512, 512, 1, 1},  {512, 512, 1, 1},  {512, 512, 1, 2},
                                 {512, 1024, 1, 1}};
  seq c = {"convs", 0}, l = {"linears", 0};
  char b[128], name[128];
  int x = -1;
  for (int i = 0; i < 13; i++) {
    int cin = blk[i][0], cout = blk[i][1], k = blk[i][2], gs = blk[i][3];
    seq s;
    snprintf(s.prefix, sizeof s.prefix, "%s", child(&c, name));
    s.next = 0;
    x = pt__g_conv(g, child(&s, b), x, cin, cout, k, 1, (k - 1) / 2, 1, 0);
    x = pt__g_bn(g, child(&s, b), x, cout, 1e-3f);
    x = act(g, &s, x, PT_OP_RELU);
    x = pt__g_conv(g, child(&s, b), x, cout, cout, 3, gs, 1, cout, 0);
    x = pt__g_bn(g, child(&s, b), x, cout, 1e-3f);
    x = act(g, &s, x, PT_OP_RELU);
  }
  x = conv_pool_activ(g, &c, x, 1024, 1024, 1, NOACT, 0, 0, 0, 1, 0);
  x = pt__g_bn(g, child(&c, b), x, 1024, 1e-3f);
  x = act(g, &c, x, PT_OP_RELU);
  x = pt__g_pool(g, child(&c, b), x, PT_OP_AVGPOOL2D, 2, 2, 0);
  x = pt__g_flatten(g, x);
  linear(g, &l, x, 1024, 10);
}

typedef struct zoo_entry {
  const char *name, *describe;
  int c, h, w, classes;
  void (*build)(pt_graph *);
} zoo_entry;

static const zoo_entry pt__zoo[] = {
    {"lenet_mnist", "MNIST 1x28x28, 10 classes", 1, 28, 28, 10, lenet},
    {"alexnet_cifar10", "CIFAR-10 3x32x32, 10 classes", 3, 32, 32, 10, alexnet},
    {"alexnet2_cifar10", "CIFAR-10 3x32x32, 10 classes", 3, 32, 32, 10, alexnet2},
    {"vgg16_cifar10", "CIFAR-10 3x32x32, 10 classes", 3, 32, 32, 10, vgg16_cifar10},
    {"vgg16_cifar100", "CIFAR-100 3x32x32, 100 classes", 3, 32, 32, 100, vgg16_cifar100},
    {"resnet18_cifar10", "CIFAR-10 3x32x32, 10 classes", 3, 32, 32, 10, resnet18},
    {"mobilenet_cifar10", "CIFAR-10 3x32x32, 10 classes", 3, 32, 32, 10, mobilenet},
    {"alexnet_imagenet", "ImageNet 3x224x224, 1000 classes", 3, 224, 224, 1000, alexnet_imagenet},
    {"resnet50_imagenet", "ImageNet 3x224x224, 1000 classes", 3, 224, 224, 1000, resnet50},
    {"vgg16_imagenet", "ImageNet 3x224x224, 1000 classes", 3, 224, 224, 1000, vgg16_imagenet},
};
#define PT__ZOO_N ((int)(sizeof pt__zoo / sizeof pt__zoo[0]))

int pt_zoo_count(void) { return PT__ZOO_N; }
const char *pt_zoo_name(int i) { return i >= 0 && i < PT__ZOO_N ? pt__zoo[i].name : NULL; }
const char *pt_zoo_describe(int i) { return i >= 0 && i < PT__ZOO_N ? pt__zoo[i].describe : NULL; }

pt_status pt_zoo_build(const char *name, pt_graph **out) {
  *out = NULL;
  for (int i = 0; i < PT__ZOO_N; i++) {
    const zoo_entry *e = &pt__zoo[i];
    if (strcmp(e->name, name)) continue;
    pt_graph *g = pt__graph_new(e->name, e->c, e->h, e->w, e->classes);
    if (!g) return pt__error(PT_ENOMEM, "zoo: out of memory building %s", name);
    e->build(g);
    pt_status s = pt__graph_finish(g);
    if (s != PT_OK) {
      pt_graph_free(g);
      return s;
    }
    *out = g;
    return PT_OK;
  }
  char known[512];
  size_t at = 0;
  for (int i = 0; i < PT__ZOO_N && at < sizeof known; i++)
    at += (size_t)snprintf(known + at, sizeof known - at, "%s%s", i ? ", " : "", pt__zoo[i].name);
  return pt__error(PT_ENOTFOUND, "unknown model '%s' (known: %s)", name, known);
}
