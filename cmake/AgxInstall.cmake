# Install: headers, libagentix and libagentix-runtime (with SONAMEs), the CMake package
# (find_package(agentix): agentix::agentix for hosts, agentix::runtime for modules) and the
# pkg-config files agentix.pc and agentix-runtime.pc. Plugins, modules, runtime binaries and the CLI install themselves where they are made.
include(CMakePackageConfigHelpers)

install(TARGETS agentix agentix-runtime EXPORT agentixTargets
        LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}"
        ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}"
        INCLUDES DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/agentix" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}"
        FILES_MATCHING PATTERN "*.h")
install(FILES "${PROJECT_BINARY_DIR}/include/agentix/version.h"
        DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}/agentix")

set(AGX_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/agentix")
install(EXPORT agentixTargets NAMESPACE agentix:: DESTINATION "${AGX_CMAKE_DIR}")
configure_package_config_file("${PROJECT_SOURCE_DIR}/cmake/agentixConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/agentixConfig.cmake" INSTALL_DESTINATION "${AGX_CMAKE_DIR}"
  PATH_VARS AGX_INSTALL_PLUGINDIR AGX_INSTALL_MODULEDIR AGX_INSTALL_RUNTIMEDIR)
write_basic_package_version_file("${PROJECT_BINARY_DIR}/agentixConfigVersion.cmake"
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES "${PROJECT_BINARY_DIR}/agentixConfig.cmake" "${PROJECT_BINARY_DIR}/agentixConfigVersion.cmake"
        DESTINATION "${AGX_CMAKE_DIR}")

# agentix.pc locates the prefix from its own folder (${pcfiledir}) so `cmake --install --prefix`
# anywhere, or moving the tree, keeps it right; absolute install dirs are written as given.
set(AGX_PC_DIR "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(AGX_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(AGX_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  file(RELATIVE_PATH agx_pc_up "/agx-root/${AGX_PC_DIR}" "/agx-root")
  string(REGEX REPLACE "/$" "" agx_pc_up "${agx_pc_up}")
  set(AGX_PC_PREFIX "\${pcfiledir}/${agx_pc_up}")
  set(AGX_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(AGX_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(AGX_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file("${PROJECT_SOURCE_DIR}/cmake/agentix.pc.in" "${PROJECT_BINARY_DIR}/agentix.pc" @ONLY)
configure_file("${PROJECT_SOURCE_DIR}/cmake/agentix-runtime.pc.in"
               "${PROJECT_BINARY_DIR}/agentix-runtime.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/agentix.pc" "${PROJECT_BINARY_DIR}/agentix-runtime.pc"
        DESTINATION "${AGX_PC_DIR}")
