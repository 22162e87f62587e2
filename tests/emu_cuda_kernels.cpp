/* The CUDA backend's kernels and launchers (kernels/launch.cu) compiled as host C++ under
 * kernels/cuda_emulation.h, for libgan_cuda_emu.so (tests/emu_cuda_runtime.cpp): the same code
 * test_emu_kernels checks kernel by kernel, here behind the backend's real host sources. */
#include "cuda_emulation.h"

#include "launch.cu"
