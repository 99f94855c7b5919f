#include "twostep_qrcode.h"
