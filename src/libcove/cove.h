/* SPDX-License-Identifier: MIT */
/* placeholder: being written */
#pragma once
