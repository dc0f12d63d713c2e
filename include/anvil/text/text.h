// Tokenizers and language-model text windows (anvil::text).
#pragma once
#include "anvil/text/bpe_tokenizer.h"
#include "anvil/text/byte_level.h"
#include "anvil/text/byte_tokenizer.h"
#include "anvil/text/pretokenize.h"
#include "anvil/text/token_windows.h"
#include "anvil/text/tokenizer.h"
