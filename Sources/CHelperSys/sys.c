#include "twostep_sys.h"
#include <sys/prctl.h>
#include <sys/resource.h>

int twostep_sys_disable_dumps(void) {
    struct rlimit zero = {0, 0};
    int rc = setrlimit(RLIMIT_CORE, &zero);
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) rc = -1;
    return rc;
}
