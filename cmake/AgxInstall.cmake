# Install: headers, libagentix (with SONAME), its CMake package (find_package(agentix)) and
# agentix.pc. Plugins, modules, runtime binaries and the CLI install themselves where they are made.
include(CMakePackageConfigHelpers)

install(TARGETS agentix EXPORT agentixTargets
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
  "${PROJECT_BINARY_DIR}/agentixConfig.cmake" INSTALL_DESTINATION "${AGX_CMAKE_DIR}")
write_basic_package_version_file("${PROJECT_BINARY_DIR}/agentixConfigVersion.cmake"
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES "${PROJECT_BINARY_DIR}/agentixConfig.cmake" "${PROJECT_BINARY_DIR}/agentixConfigVersion.cmake"
        DESTINATION "${AGX_CMAKE_DIR}")

configure_file("${PROJECT_SOURCE_DIR}/cmake/agentix.pc.in" "${PROJECT_BINARY_DIR}/agentix.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/agentix.pc" DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
