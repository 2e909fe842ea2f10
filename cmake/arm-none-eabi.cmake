# Cross build of the device library for a Cortex-M4 with Debian's gcc-arm-none-eabi and
# newlib (packages gcc-arm-none-eabi, libnewlib-arm-none-eabi):
#   cmake -S . -B build-m4 -DCMAKE_TOOLCHAIN_FILE=cmake/arm-none-eabi.cmake \
#         -DKL_DEVICE_ONLY=ON -DCMAKE_BUILD_TYPE=MinSizeRel
# Only host/ is built (the top-level CMakeLists.txt stops there with KL_DEVICE_ONLY); the
# POSIX-only files (unix: transport, TCP socket, /dev/urandom) compile to nothing because
# __unix__ is not defined for this target. scripts/device-size.sh uses this file.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_AR arm-none-eabi-ar)
set(CMAKE_RANLIB arm-none-eabi-ranlib)
# no linking in try_compile: there is no board support package here
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
# -Wno-type-limits: on a 32-bit target, size checks written for 64-bit size_t (e.g. GCM's
# 2^36-byte limit in host/hcx_gcm.c) are always false, which -Wextra reports as an error.
set(CMAKE_C_FLAGS_INIT "-mcpu=cortex-m4 -mthumb -mfloat-abi=soft -ffunction-sections -fdata-sections -Wno-type-limits")
set(CMAKE_C_FLAGS_MINSIZEREL_INIT "-Os -DNDEBUG")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
