# The layers of src/ and what each may include (docs/architecture.md, "Layers").
#
# Included by the top-level CMakeLists.txt for the table; run as a script
# (cmake -DSRC=<dir> -P src/layers.cmake) it checks every .c and .h under SRC:
# a file of layer L may include "X/..." only if X is in ORCH_LAYER_<L>, and a
# module's X_internal.h only from inside X. The build runs it before compiling
# any layer (target orch_layering), ctest as unit.layering.

# Bottom to top: the order the libraries are added in.
set(ORCH_LAYERS base sched dag store auth engine view api client cli)

# Each layer: itself and the layers below it that it builds on (its link
# dependencies, closed over). Keep in step with the target_link_libraries of
# src/<layer>/CMakeLists.txt and the table in docs/architecture.md.
set(ORCH_LAYER_base base)
set(ORCH_LAYER_sched base sched)
set(ORCH_LAYER_dag base sched dag)
set(ORCH_LAYER_store base store)
set(ORCH_LAYER_auth base store auth)
set(ORCH_LAYER_engine base sched dag store engine)
set(ORCH_LAYER_view base sched dag store view)
set(ORCH_LAYER_api base sched dag store auth engine view api)
set(ORCH_LAYER_client base client)
set(ORCH_LAYER_cli base sched dag store auth engine view api client cli)

if(NOT CMAKE_SCRIPT_MODE_FILE)
  return()
endif()

cmake_minimum_required(VERSION 3.25)
if(NOT SRC)
  message(FATAL_ERROR "layers.cmake: pass -DSRC=<the src directory>")
endif()
get_filename_component(SRC "${SRC}" ABSOLUTE)
if(NOT IS_DIRECTORY "${SRC}")
  message(FATAL_ERROR "layers.cmake: '${SRC}' is not a directory")
endif()

# The line number of the first line of `file` that contains `text`.
function(orch_line_of file text out)
  file(STRINGS "${file}" lines)
  set(n 0)
  foreach(l IN LISTS lines)
    math(EXPR n "${n} + 1")
    string(FIND "${l}" "${text}" at)
    if(at GREATER -1)
      set(${out} ${n} PARENT_SCOPE)
      return()
    endif()
  endforeach()
  set(${out} 0 PARENT_SCOPE)
endfunction()

set(problems "")
file(GLOB_RECURSE files RELATIVE "${SRC}" "${SRC}/*.c" "${SRC}/*.h")
list(SORT files)
foreach(rel IN LISTS files)
  if(NOT rel MATCHES "^([^/]+)/")
    string(APPEND problems "  src/${rel}: not inside a layer's folder\n")
    continue()
  endif()
  set(layer "${CMAKE_MATCH_1}")
  if(NOT DEFINED ORCH_LAYER_${layer})
    string(APPEND problems "  src/${rel}: '${layer}' is not in the layer table (src/layers.cmake)\n")
    continue()
  endif()
  set(allowed ${ORCH_LAYER_${layer}})
  file(STRINGS "${SRC}/${rel}" incs REGEX "^[ \t]*#[ \t]*include[ \t]*\"")
  foreach(line IN LISTS incs)
    if(NOT line MATCHES "^[ \t]*#[ \t]*include[ \t]*\"([^\"]+)\"")
      continue()
    endif()
    set(inc "${CMAKE_MATCH_1}")
    set(why "")
    if(inc MATCHES "^([^/]+)/")
      set(to "${CMAKE_MATCH_1}")
      if(to STREQUAL "..")
        set(why "a path up the tree: write \"LAYER/header.h\"")
      elseif(NOT DEFINED ORCH_LAYER_${to})
        set(why "'${to}' is not a layer")
      elseif(NOT to IN_LIST allowed)
        list(JOIN allowed ", " may)
        set(why "layer '${layer}' may include only ${may}")
      elseif(inc MATCHES "_internal\\.h$" AND NOT to STREQUAL layer)
        set(why "a module's _internal.h is private to its folder")
      endif()
    endif()
    if(why)
      orch_line_of("${SRC}/${rel}" "\"${inc}\"" n)
      string(APPEND problems "  src/${rel}:${n}: #include \"${inc}\": ${why}\n")
    endif()
  endforeach()
endforeach()

if(problems)
  message(FATAL_ERROR "layering violated (see docs/architecture.md, \"Layers\"):\n${problems}")
endif()
