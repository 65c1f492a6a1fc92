/* shadowcopy: allocation-failure injection for tests (cow/fault.h). */
#include <config.h>

#include "cow/fault.h"

int (*sc_fault_hook) (const char *site);
