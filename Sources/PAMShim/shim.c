#include "pamshim.h"
