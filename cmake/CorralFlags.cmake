# Warnings and sanitizers for Corral's own targets (never for the engine).
add_library(corral_flags INTERFACE)
target_compile_options(corral_flags INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
  -Woverloaded-virtual -Wimplicit-fallthrough -Wno-missing-field-initializers)
if(CORRAL_WERROR)
  target_compile_options(corral_flags INTERFACE -Werror)
endif()
# Clang checks the locking rules written with common/thread_annotations.h. The fuzz build
# (clang, part of `make test`) compiles every module with a mutex, so CI enforces them.
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  target_compile_options(corral_flags INTERFACE -Wthread-safety)
endif()

if(CORRAL_SANITIZE STREQUAL "asan-ubsan")
  set(_san -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_compile_options(corral_flags INTERFACE ${_san})
  target_link_options(corral_flags INTERFACE ${_san})
elseif(CORRAL_SANITIZE STREQUAL "tsan")
  set(_san -fsanitize=thread -fno-omit-frame-pointer)
  # Boost.Asio uses std::atomic_thread_fence, which GCC warns TSan cannot model (-Wtsan);
  # with -Werror that would fail every file that includes Asio.
  target_compile_options(corral_flags INTERFACE ${_san} -Wno-tsan)
  target_link_options(corral_flags INTERFACE ${_san})
elseif(CORRAL_SANITIZE)
  message(FATAL_ERROR "CORRAL_SANITIZE must be '', 'asan-ubsan' or 'tsan'")
endif()
if(CORRAL_FUZZ)
  target_compile_options(corral_flags INTERFACE -fsanitize=fuzzer-no-link,address,undefined)
  target_link_options(corral_flags INTERFACE -fsanitize=address,undefined)
endif()

# Unity build (the release preset): a module's sources compile as a few batches of 8 instead
# of one compiler per file. Most of a file's compile time is the headers (Boost.Asio/Beast,
# nlohmann/json) and the inline code they emit (CLI11 alone is ~70 % of a cmd_*.cc object),
# so batching (and -g1 in the preset) cuts the binary's compile CPU from ~820 to ~400 s and a
# cold `make run` by half (bench/results/20261203-cold-make-run/README.md).
# The sanitizer and fuzz presets stay per-file, so CI still proves every file includes what
# it uses; the release build proves the batches agree (no clashing names in anonymous
# namespaces). GCC's -Wsubobject-linkage is meant for headers, and a batched .cc looks like one.
option(CORRAL_UNITY_BUILD "Compile each module's sources in batches (faster cold build)" OFF)
function(corral_unity target)
  if(CORRAL_UNITY_BUILD)
    set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE 8)
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      target_compile_options(${target} PRIVATE -Wno-subobject-linkage)
    endif()
  endif()
endfunction()

# corral_module(NAME SOURCES ... DEPS ...): one folder, one target; DEPS is the module's
# allowed dependency list (DESIGN.md: common <- catalog/supervisor/proxy <- control <- daemon/cli).
function(corral_module name)
  cmake_parse_arguments(M "" "" "SOURCES;DEPS" ${ARGN})
  add_library(corral_${name} STATIC ${M_SOURCES})
  corral_unity(corral_${name})
  target_include_directories(corral_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(corral_${name} PUBLIC corral_flags ${M_DEPS})
endfunction()
