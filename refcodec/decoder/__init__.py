"""The reference decoder: spec chapters 2-8 in NumPy, one module per chapter.

    conventions  §2    Round2, Clip3, Isqrt            errors    §2.6  error classes
    rans         §3    the rANS decoder                cdf       §4    CDF tables
    layers       §5    integer layers                  model     §6    the model file
    bitstream    §7    stream syntax                   latents   §8.3, §8.7-§8.10
    decoding     §8    the decoding process, and the stages of §9.4

It needs NumPy alone and imports nothing from refcodec.fast, refcodec.encoder
or refcodec.conformance.
"""
