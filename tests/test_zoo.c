/* The zoo against PyTorch: op names, types, shapes, parameters and FLOPs of all 10 networks are
 * compared with tests/fixtures/zoo_reference.json, which make_zoo_reference.py writes from the same
 * architectures built with torch.nn. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "naive.h"
#include "predtuner/predtuner.h"

static cJSON *load_reference(void) {
  size_t n;
  char *txt = read_all(PT_SOURCE_DIR "/tests/fixtures/zoo_reference.json", &n);
  cr_assert_not_null(txt, "zoo_reference.json missing");
  cJSON *j = cJSON_ParseWithLength(txt, n);
  free(txt);
  cr_assert_not_null(j);
  return j;
}

Test(zoo, all_ten_networks_match_pytorch) {
  cJSON *ref = load_reference();
  cr_assert_eq(pt_zoo_count(), 10);
  cr_assert_eq(cJSON_GetArraySize(ref), 10);
  int idx = 0;
  for (cJSON *net = ref->child; net; net = net->next, idx++) {
    const char *name = cJSON_GetObjectItem(net, "name")->valuestring;
    cr_assert_str_eq(pt_zoo_name(idx), name);
    pt_graph *g;
    cr_assert_eq(pt_zoo_build(name, &g), PT_OK, "%s: %s", name, pt_last_error());
    cJSON *in = cJSON_GetObjectItem(net, "input");
    int c, h, w;
    pt_graph_input_shape(g, &c, &h, &w);
    cr_assert(c == cJSON_GetArrayItem(in, 0)->valueint && h == cJSON_GetArrayItem(in, 1)->valueint &&
              w == cJSON_GetArrayItem(in, 2)->valueint);
    cJSON *ops = cJSON_GetObjectItem(net, "ops");
    cr_assert_eq(pt_graph_num_ops(g), cJSON_GetArraySize(ops), "%s: op count", name);
    int i = 0;
    for (cJSON *op = ops->child; op; op = op->next, i++) {
      cr_assert_str_eq(pt_graph_op_name(g, i), cJSON_GetObjectItem(op, "name")->valuestring, "%s op %d", name, i);
      cr_assert_str_eq(pt_op_type_name(pt_graph_op_type(g, i)), cJSON_GetObjectItem(op, "type")->valuestring,
                       "%s op %s", name, pt_graph_op_name(g, i));
      int64_t sh[3];
      int nd = pt_graph_op_out_shape(g, i, sh);
      cJSON *out = cJSON_GetObjectItem(op, "out");
      cr_assert_eq(nd, cJSON_GetArraySize(out), "%s op %s rank", name, pt_graph_op_name(g, i));
      for (int k = 0; k < nd; k++)
        cr_assert_eq(sh[k], (int64_t)cJSON_GetArrayItem(out, k)->valuedouble, "%s op %s dim %d", name,
                     pt_graph_op_name(g, i), k);
      cr_assert_eq(pt_graph_op_params(g, i), (int64_t)cJSON_GetObjectItem(op, "params")->valuedouble);
      cr_assert_eq(pt_graph_op_flops(g, i), cJSON_GetObjectItem(op, "flops")->valuedouble, "%s op %s flops", name,
                   pt_graph_op_name(g, i));
      cr_assert_eq(pt_graph_find_op(g, pt_graph_op_name(g, i)), i);
    }
    cJSON *tensors = cJSON_GetObjectItem(net, "tensors");
    cr_assert_eq(pt_graph_num_tensors(g), cJSON_GetArraySize(tensors), "%s: tensor count", name);
    for (cJSON *t = tensors->child; t; t = t->next) {
      const char *tn = cJSON_GetObjectItem(t, "name")->valuestring;
      int found = -1;
      for (int k = 0; k < pt_graph_num_tensors(g); k++)
        if (!strcmp(pt_graph_tensor_name(g, k), tn)) found = k;
      cr_assert(found >= 0, "%s: state_dict key %s missing", name, tn);
      int64_t sh[4];
      int nd = pt_graph_tensor_shape(g, found, sh);
      cJSON *s = cJSON_GetObjectItem(t, "shape");
      cr_assert_eq(nd, cJSON_GetArraySize(s));
      for (int k = 0; k < nd; k++) cr_assert_eq(sh[k], (int64_t)cJSON_GetArrayItem(s, k)->valuedouble, "%s %s", name, tn);
    }
    cr_assert_eq(pt_graph_total_params(g), (int64_t)cJSON_GetObjectItem(net, "params")->valuedouble);
    pt_graph_free(g);
  }
  cJSON_Delete(ref);
}

Test(zoo, issue_examples_ops_convs_params) {
  static const struct {
    const char *name;
    int ops, convs;
    int64_t params;
  } ex[] = {{"vgg16_cifar10", 34, 13, 14982474}, {"resnet18_cifar10", 42, 21, 271690},
            {"resnet50_imagenet", 158, 53, 25583592}, {"lenet_mnist", 10, 2, 3274634},
            {"alexnet_cifar10", 14, 5, 2510666},      {"alexnet2_cifar10", 16, 6, 307498},
            {"vgg16_cifar100", 34, 13, 15028644},     {"mobilenet_cifar10", 83, 27, 3217226},
            {"alexnet_imagenet", 18, 5, 61100840},    {"vgg16_imagenet", 36, 13, 138357544}};
  for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++) {
    pt_graph *g;
    cr_assert_eq(pt_zoo_build(ex[i].name, &g), PT_OK);
    cr_assert_eq(pt_graph_num_ops(g), ex[i].ops, "%s", ex[i].name);
    cr_assert_eq(pt_graph_count_ops(g, PT_OP_CONV2D), ex[i].convs, "%s", ex[i].name);
    cr_assert_eq(pt_graph_total_params(g), ex[i].params, "%s", ex[i].name);
    pt_graph_free(g);
  }
}

Test(zoo, known_flops_and_names) {
  pt_graph *g;
  cr_assert_eq(pt_zoo_build("vgg16_cifar10", &g), PT_OK);
  /* convs.0: 64*3*3*3 weights x 32*32 outputs */
  cr_assert_eq(pt_graph_op_flops(g, 0), 1728.0 * 1024);
  cr_assert_str_eq(pt_graph_op_name(g, 3), "convs.3");
  cr_assert_eq(pt_graph_op_type(g, 3), PT_OP_MAXPOOL2D);
  cr_assert_str_eq(pt_graph_op_name(g, 33), "linears.2");
  pt_graph_free(g);
  cr_assert_eq(pt_zoo_build("resnet18_cifar10", &g), PT_OK);
  /* registration order inside a block with a shortcut: mainline, relu1, then shortcut */
  int a = pt_graph_find_op(g, "convs.5.relu1"), b = pt_graph_find_op(g, "convs.5.shortcut.0");
  cr_assert(a >= 0 && b == a + 1);
  pt_graph_free(g);
}

Test(zoo, unknown_name_lists_the_known_ones) {
  pt_graph *g = (pt_graph *)1;
  cr_assert_eq(pt_zoo_build("vgg17", &g), PT_ENOTFOUND);
  cr_assert_null(g);
  cr_assert_not_null(strstr(pt_last_error(), "unknown model 'vgg17'"));
  cr_assert_not_null(strstr(pt_last_error(), "resnet50_imagenet"));
  cr_assert_null(pt_zoo_name(10));
}
