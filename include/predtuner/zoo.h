/* The 10 networks of PredTuner's model zoo, with PyTorch's op names and state_dict keys. */
#ifndef PREDTUNER_ZOO_H
#define PREDTUNER_ZOO_H

#include "predtuner/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

int pt_zoo_count(void);
/* Name of network i ("lenet_mnist", ...), or NULL when out of range. */
const char *pt_zoo_name(int i);
/* What the network is for ("MNIST 1x28x28, 10 classes"). */
const char *pt_zoo_describe(int i);
/* Builds the network (weights not loaded). Unknown name: PT_ENOTFOUND, listing the known ones. */
pt_status pt_zoo_build(const char *name, pt_graph **out);

#ifdef __cplusplus
}
#endif
#endif
