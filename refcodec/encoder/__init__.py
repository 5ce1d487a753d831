"""The encoder side (informative, Annex A): encoder, rANS encoder, CDF tables, exporter, training.

    encode    Annex A.1   pictures to streams           rans      Annex A.2  the rANS encoder
    latents   Annex A.1.4 choosing the coded values     cdf       Annex A.2  building CDF tables
    floatnet  Annex A.1   the float transforms          export    Annex A.1.5 float model -> model file
    train     training float models (needs torch, the ``train`` extra)
"""
