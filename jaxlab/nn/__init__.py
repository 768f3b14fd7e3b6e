"""Building blocks shared by the models: activations, norms, initializers (incl. LSUV and
Fixup), stochastic regularizers, convolution/pooling helpers, and the layer sequences that
several models repeat (conv - norm - act, the transformer MLP and pre-norm residual, patch
embedding). Activations, norms and initializers are chosen by name (with a ConfigError
listing the valid names) or passed as a callable."""

from jaxlab.nn.activations import ACTIVATIONS, Maxout, get_activation, list_activations, maxout
from jaxlab.nn.attention import (
    KVCache,
    MultiHeadAttention,
    causal_mask,
    padding_mask,
    scaled_dot_product_attention,
)
from jaxlab.nn.blocks import (
    ConvNormAct,
    MlpBlock,
    conv_norm_act,
    patch_embedding,
    pre_norm_residual,
)
from jaxlab.nn.conv import (
    PADDING_MODES,
    GlobalAvgPoolHead,
    SeparableConv,
    adaptive_avg_pool,
    check_input_size,
    conv,
    conv_output_size,
    conv_padding,
    global_avg_pool,
)
from jaxlab.nn.initializers import (
    INITIALIZERS,
    FixupBias,
    FixupScale,
    fixup_kernel_init,
    fixup_scale,
    get_initializer,
    kaiming,
    lsuv_init,
)
from jaxlab.nn.norms import NORMS, GroupNorm, Identity, get_norm, local_response_norm
from jaxlab.nn.positional import (
    POSITIONS,
    LearnedPositions,
    relative_key_logits,
    relative_position_index,
    sinusoidal_encoding,
)
from jaxlab.nn.regularizers import (
    DropConnectDense,
    StochasticDepth,
    drop_connect,
    dropout,
    stochastic_depth_rates,
)

__all__ = [
    "ACTIVATIONS",
    "INITIALIZERS",
    "NORMS",
    "PADDING_MODES",
    "ConvNormAct",
    "DropConnectDense",
    "FixupBias",
    "FixupScale",
    "GlobalAvgPoolHead",
    "GroupNorm",
    "Identity",
    "Maxout",
    "MlpBlock",
    "SeparableConv",
    "StochasticDepth",
    "adaptive_avg_pool",
    "check_input_size",
    "conv",
    "conv_norm_act",
    "conv_output_size",
    "conv_padding",
    "drop_connect",
    "dropout",
    "fixup_kernel_init",
    "fixup_scale",
    "get_activation",
    "get_initializer",
    "get_norm",
    "global_avg_pool",
    "kaiming",
    "list_activations",
    "local_response_norm",
    "lsuv_init",
    "maxout",
    "patch_embedding",
    "pre_norm_residual",
    "stochastic_depth_rates",
    # attention and positions
    "POSITIONS",
    "KVCache",
    "LearnedPositions",
    "MultiHeadAttention",
    "causal_mask",
    "padding_mask",
    "relative_key_logits",
    "relative_position_index",
    "scaled_dot_product_attention",
    "sinusoidal_encoding",
]
