# Where things land, in the build tree and when installed. Both trees share one shape relative to
# libagentix, so the library finds its plugins, modules and runtime binaries from its own location
# (dladdr) whether it runs from the build tree or from an installed prefix:
#   <libdir>/libagentix.so, <libdir>/libagentix-runtime.so (what the sandbox side links)
#   <libdir>/agentix/backends/   backend plugins and their .agxplugin manifests
#   <libdir>/agentix/modules/    built-in runtime modules (agentix.bash.so, agentix.files.so)
#   <libdir>/agentix/bin/        agentix-server, agentix-worker, agentix-ns-init, agentix-docker-watch
set(AGX_BUILD_LIBDIR "${PROJECT_BINARY_DIR}/lib")
set(AGX_BUILD_BINDIR "${PROJECT_BINARY_DIR}/bin")
set(AGX_BUILD_PLUGINDIR "${AGX_BUILD_LIBDIR}/agentix/backends")
set(AGX_BUILD_MODULEDIR "${AGX_BUILD_LIBDIR}/agentix/modules")
set(AGX_BUILD_RUNTIMEDIR "${AGX_BUILD_LIBDIR}/agentix/bin")
set(CMAKE_LIBRARY_OUTPUT_DIRECTORY "${AGX_BUILD_LIBDIR}")
set(CMAKE_ARCHIVE_OUTPUT_DIRECTORY "${AGX_BUILD_LIBDIR}")
set(CMAKE_RUNTIME_OUTPUT_DIRECTORY "${AGX_BUILD_BINDIR}")

set(AGX_INSTALL_PLUGINDIR "${CMAKE_INSTALL_LIBDIR}/agentix/backends")
set(AGX_INSTALL_MODULEDIR "${CMAKE_INSTALL_LIBDIR}/agentix/modules")
set(AGX_INSTALL_RUNTIMEDIR "${CMAKE_INSTALL_LIBDIR}/agentix/bin")

# A backend plugin: a shared object plus its manifest, in the build tree and installed.
#   agx_add_backend(NAME docker SYMBOL agx_backend_docker SOURCES a.c b.c [LIBS ...])
function(agx_add_backend)
  cmake_parse_arguments(B "" "NAME;SYMBOL" "SOURCES;LIBS" ${ARGN})
  set(target "agentix-backend-${B_NAME}")
  add_library(${target} MODULE ${B_SOURCES})
  # Public headers and the backend toolkit only (scripts/check-layers.sh); the entry function is
  # the one symbol it exports (AGX_EXPORT).
  target_include_directories(${target} PRIVATE "${PROJECT_SOURCE_DIR}")
  target_link_libraries(${target} PRIVATE agentix ${B_LIBS})
  set_target_properties(${target} PROPERTIES PREFIX "lib" LIBRARY_OUTPUT_DIRECTORY "${AGX_BUILD_PLUGINDIR}"
                        BUILD_RPATH "${AGX_BUILD_LIBDIR}" INSTALL_RPATH "$ORIGIN/../.."
                        C_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
  set(manifest "${AGX_BUILD_PLUGINDIR}/${B_NAME}.agxplugin")
  file(WRITE "${manifest}" "# agentix backend manifest\nname = ${B_NAME}\nlibrary = lib${target}.so\nsymbol = ${B_SYMBOL}\n")
  install(TARGETS ${target} LIBRARY DESTINATION "${AGX_INSTALL_PLUGINDIR}")
  install(FILES "${manifest}" DESTINATION "${AGX_INSTALL_PLUGINDIR}")
endfunction()

# A runtime module loaded by agentix-worker: <name>.so exporting agx_module_descriptor. Modules
# link libagentix-runtime (values, agx_ctx_*), like the worker that loads them, never libagentix.
#   agx_add_module(NAME agentix.bash SOURCES bash.c [OUTPUT_DIR dir] [NO_INSTALL])
function(agx_add_module)
  cmake_parse_arguments(M "NO_INSTALL" "NAME;OUTPUT_DIR" "SOURCES;LIBS" ${ARGN})
  string(REPLACE "." "_" target "agxmod_${M_NAME}")
  if(NOT M_OUTPUT_DIR)
    set(M_OUTPUT_DIR "${AGX_BUILD_MODULEDIR}")
  endif()
  add_library(${target} MODULE ${M_SOURCES})
  target_link_libraries(${target} PRIVATE agentix-runtime ${M_LIBS})
  # A module calling beyond libagentix-runtime (and its own LIBS) fails to link here rather than
  # to load in the worker. Sanitizer runtimes resolve only in the executable: no check there.
  if(NOT AGX_SANITIZE AND NOT AGX_FUZZ)
    target_link_options(${target} PRIVATE LINKER:--no-undefined)
  endif()
  set_target_properties(${target} PROPERTIES PREFIX "" OUTPUT_NAME "${M_NAME}"
                        LIBRARY_OUTPUT_DIRECTORY "${M_OUTPUT_DIR}"
                        C_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON
                        BUILD_RPATH "${AGX_BUILD_LIBDIR}" INSTALL_RPATH "$ORIGIN/../..")
  if(NOT M_NO_INSTALL)
    install(TARGETS ${target} LIBRARY DESTINATION "${AGX_INSTALL_MODULEDIR}")
  endif()
endfunction()
