# The library in layers (docs/design.md, "Layers"). Each layer is a static library that may include
# and call only itself and the layers before it:
#  - includes: a layer compiles against a tree of links made here (build/layers/<layer>/) that holds
#    only its own and the lower layers' folders and public headers, so `#include "tuner/..."` from
#    graph/ fails to compile;
#  - calls: a check links each layer's objects into a shared object with no undefined symbols
#    (-Wl,--no-undefined) against the layers below it alone, so a call up a layer fails to link.
# libpredtuner is made from every layer's objects; the CLI sits on top of all of them.

# pt_layer(<name> SOURCES ... [HEADERS ...] [LINKS rel=path ...] [LIBS ...] [DEFS ...])
#   SOURCES  the layer's .c files
#   HEADERS  the public headers (include/predtuner/) it owns
#   LINKS    extra entries of the tree: rel (as #include names it) = absolute path
#   LIBS     external libraries its code includes and calls
set(PT_LAYERS "")
set(PT_LAYER_TREE_ENTRIES "") # rel=path entries of every layer so far
set(PT_LAYER_EXTERNAL_LIBS "")

function(pt_layer_tree dir)
  file(REMOVE_RECURSE ${dir})
  file(MAKE_DIRECTORY ${dir})
  foreach(e IN LISTS PT_LAYER_TREE_ENTRIES)
    string(REGEX MATCH "^[^=]+" rel "${e}")
    string(REGEX REPLACE "^[^=]+=" "" path "${e}")
    get_filename_component(parent ${dir}/${rel} DIRECTORY)
    file(MAKE_DIRECTORY ${parent})
    file(CREATE_LINK ${path} ${dir}/${rel} SYMBOLIC)
  endforeach()
endfunction()

macro(pt_layer name)
  cmake_parse_arguments(PTL "" "" "SOURCES;HEADERS;LINKS;LIBS" ${ARGN})
  if(IS_DIRECTORY ${CMAKE_SOURCE_DIR}/src/${name})
    list(APPEND PT_LAYER_TREE_ENTRIES "${name}=${CMAKE_SOURCE_DIR}/src/${name}")
  endif()
  foreach(h IN LISTS PTL_HEADERS)
    list(APPEND PT_LAYER_TREE_ENTRIES "predtuner/${h}=${CMAKE_SOURCE_DIR}/include/predtuner/${h}")
  endforeach()
  list(APPEND PT_LAYER_TREE_ENTRIES ${PTL_LINKS})
  pt_layer_tree(${CMAKE_BINARY_DIR}/layers/${name})
  if(PTL_SOURCES)
    add_library(pt_${name} STATIC ${PTL_SOURCES})
    set_target_properties(pt_${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
    target_include_directories(pt_${name} PRIVATE ${CMAKE_BINARY_DIR}/layers/${name})
    target_compile_definitions(pt_${name} PRIVATE _GNU_SOURCE)
    list(LENGTH PT_LAYERS n_below)
    if(n_below GREATER 0)
      list(GET PT_LAYERS -1 below)
      target_link_libraries(pt_${name} PUBLIC pt_${below})
    endif()
    # external libraries are the layer's own business: layers above get them at link time only
    target_link_libraries(pt_${name} PRIVATE ${PTL_LIBS})
    list(APPEND PT_LAYER_EXTERNAL_LIBS ${PTL_LIBS})
    list(APPEND PT_LAYERS ${name})
  endif()
endmacro()

# The link check of every layer: its archive whole, the layers below it as usual, nothing undefined.
# (Not with the fuzzing build: clang links its sanitizer runtimes into executables only.)
function(pt_layer_checks)
  foreach(name IN LISTS PT_LAYERS)
    add_library(pt_layercheck_${name} SHARED ${CMAKE_SOURCE_DIR}/cmake/layer_check.c)
    target_link_libraries(pt_layercheck_${name} PRIVATE "$<LINK_LIBRARY:WHOLE_ARCHIVE,pt_${name}>")
    target_link_options(pt_layercheck_${name} PRIVATE -Wl,--no-undefined)
  endforeach()
endfunction()

# The include trees cannot stop a relative path out of a layer's folder: no source may include one.
function(pt_layer_no_relative_includes)
  file(GLOB_RECURSE srcs ${CMAKE_SOURCE_DIR}/src/*.[ch] ${CMAKE_SOURCE_DIR}/zoo/*.[ch] ${CMAKE_SOURCE_DIR}/kernels/*.cu
       ${CMAKE_SOURCE_DIR}/kernels/*.h ${CMAKE_SOURCE_DIR}/kernels/*.cuh ${CMAKE_SOURCE_DIR}/include/*.h)
  foreach(f IN LISTS srcs)
    file(STRINGS ${f} bad REGEX "^[ \t]*#[ \t]*include[ \t]*\"[^\"]*\\.\\./")
    if(bad)
      message(FATAL_ERROR "${f}: includes a relative path out of its folder (${bad}); include by layer folder instead")
    endif()
  endforeach()
endfunction()
pt_layer_no_relative_includes()
