"""Published ImageNet-1K reference points (../shared/reference/mambavision.md, from the MambaVision paper):
params in M, A100 throughput in img/s at batch 128, top-1 in %. For a separate panel only: these were
measured on another task and machine than any proxy."""

_TABLE = """
MambaVision T 31.8 6298 82.3; MambaVision T2 35.1 5990 82.7; MambaVision S 50.1 4700 83.3;
MambaVision B 97.7 3670 84.2; MambaVision L 228.0 2190 85.0; MambaVision L2 241.6 1021 85.3;
Vim T 7.0 3957 76.1; Vim S 26.0 1974 80.5;
EfficientVMamba T 6.0 2904 76.5; EfficientVMamba S 11.0 1610 78.7; EfficientVMamba B 33.0 1482 81.8;
VMamba T 30.0 1282 82.6; VMamba S 50.0 843 83.6; VMamba B 89.0 645 83.9;
ConvNeXt T 28.6 3196 82.0; ConvNeXt S 50.2 2008 83.1; ConvNeXt B 88.6 1485 83.8;
Swin T 28.3 2758 81.3; Swin S 49.6 1720 83.2; DeiT B 86.6 2035 82.0;
FasterViT 1 53.4 4188 83.2; FasterViT 2 75.9 3161 84.2; NextViT S 31.7 3834 82.5
"""


def _parse(table: str):
    points = []
    for entry in table.replace("\n", " ").split(";"):
        family, size, params, speed, top1 = entry.split()
        points.append({"family": family, "name": f"{family}-{size}", "params": float(params),
                       "throughput": float(speed), "top1": float(top1)})
    return points


PUBLISHED = _parse(_TABLE)
