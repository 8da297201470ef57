/* predtuner-gpu: accuracy-aware approximation tuning for CNN inference. Umbrella header. */
#ifndef PREDTUNER_H
#define PREDTUNER_H

#include "predtuner/abi.h"
#include "predtuner/app.h"
#include "predtuner/approx.h"
#include "predtuner/backend.h"
#include "predtuner/dist.h"
#include "predtuner/exec.h"
#include "predtuner/frontend.h"
#include "predtuner/graph.h"
#include "predtuner/hpvm.h"
#include "predtuner/io.h"
#include "predtuner/knobs.h"
#include "predtuner/log.h"
#include "predtuner/measure.h"
#include "predtuner/pareto.h"
#include "predtuner/promise.h"
#include "predtuner/search.h"
#include "predtuner/status.h"
#include "predtuner/tensor.h"
#include "predtuner/tuner.h"
#include "predtuner/zoo.h"

#endif
