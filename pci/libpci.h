/* SPDX-License-Identifier: MIT */
/*
 * pci: libpci's own header. Its name, <pci/pci.h>, is also the name of this module's
 * header under the top-level include directory, which the compiler searches first;
 * include_next continues the search after that directory and reaches libpci's.
 */
#pragma once

#include_next <pci/pci.h>
