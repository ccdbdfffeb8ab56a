# The libraries, in one place. Every folder under core/ and runtime/ builds one hidden static
# support library (agx_add_support_library, below); the two shared libraries are assembled from
# them here, each support library linked whole into exactly one of them:
#
#   libagentix-runtime.so  = agx_base (core/base: errors, values and codecs, clock, fd I/O,
#                            the agx_ctx_* entry points) — what runs in the sandbox too.
#   libagentix.so          = agx_host (core/host) + agx_fleet (core/fleet) + agx_client
#                            (runtime/client) + agx_transport (runtime/transport), and the pieces
#                            of agx_wire / agx_mpraw the client uses; links libagentix-runtime.
#
# Only what the public headers declare with AGX_API is exported (hidden visibility everywhere
# else); tests/exports checks that the exports equal the headers. agentix-server and
# agentix-worker link libagentix-runtime plus the stateless support libraries they need
# (agx_wire, agx_transport, agx_server), never libagentix. See docs/ARCHITECTURE.md.

# agx_add_support_library(NAME agx_x SOURCES a.c … [LIBS …])
# A static, position-independent library of internals with hidden visibility. Whoever links it
# (a shared library above, an executable, a test) may include the internal headers of its folder
# as "core/…" / "runtime/…" from the source root.
function(agx_add_support_library)
  cmake_parse_arguments(S "" "NAME" "SOURCES;LIBS" ${ARGN})
  add_library(${S_NAME} STATIC ${S_SOURCES})
  target_include_directories(${S_NAME} PUBLIC "${PROJECT_SOURCE_DIR}"
                             "${PROJECT_SOURCE_DIR}/include" "${PROJECT_BINARY_DIR}/include")
  target_link_libraries(${S_NAME} PUBLIC ${S_LIBS})
  set_target_properties(${S_NAME} PROPERTIES POSITION_INDEPENDENT_CODE ON
                        C_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
endfunction()

# A shared library needs one source of its own; its content is the support libraries.
set(agx_lib_stub "${PROJECT_BINARY_DIR}/agx_library.c")
if(NOT EXISTS "${agx_lib_stub}")
  file(WRITE "${agx_lib_stub}" "/* generated: the library's code is its support libraries */\n")
endif()

function(agx_shared_library name export_name)
  add_library(${name} SHARED "${agx_lib_stub}")
  target_include_directories(${name}
    PUBLIC "$<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>"
           "$<BUILD_INTERFACE:${PROJECT_BINARY_DIR}/include>"
           "$<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>")
  set_target_properties(${name} PROPERTIES VERSION ${PROJECT_VERSION}
                        SOVERSION ${PROJECT_VERSION_MAJOR} EXPORT_NAME ${export_name}
                        C_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
endfunction()

agx_shared_library(agentix-runtime runtime)
add_library(agentix::runtime ALIAS agentix-runtime)
target_link_libraries(agentix-runtime PRIVATE "$<LINK_LIBRARY:WHOLE_ARCHIVE,agx_base>")
# Every symbol it uses must resolve at link time against libc, jansson and msgpack-c alone: a call
# into the host side (curl, lws, uv, libagentix) fails the build, not a sandbox at run time.
# Sanitizer builds leave their runtime's symbols to the executable, so the check runs only
# without them.
if(NOT AGX_SANITIZE AND NOT AGX_FUZZ AND NOT AGX_TSAN)
  target_link_options(agentix-runtime PRIVATE LINKER:--no-undefined)
endif()

agx_shared_library(agentix agentix)
add_library(agentix::agentix ALIAS agentix)
target_link_libraries(agentix PUBLIC agentix-runtime
  PRIVATE "$<LINK_LIBRARY:WHOLE_ARCHIVE,agx_host,agx_fleet,agx_client,agx_transport>")
