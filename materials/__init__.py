"""The material domain: the catalogue of materials, composition in integer grams, recycled-content accounting (the
ISO 22095 mass balance model) and provenance through every recycling. The contracts enforce the mass balance on-chain;
everyone else asks here for the arithmetic."""

from .accounting import (
    FULL_SHARE_BPS,
    Composition,
    LotRecord,
    Part,
    bps_to_fraction,
    bps_to_percent,
    by_material,
    recovery_excess,
    recycled_grams,
    recycled_share_bps,
    share_bps,
)
from .catalogue import (
    Material,
    catalogue,
    material,
    material_code_bytes32,
    material_code_from_bytes32,
    material_label,
    recovered_material,
)
from .errors import InvalidComposition, MaterialsError, UnknownMaterial
from .flow import FlowItems, FlowLink, MaterialFlow, MonthShare, material_flow
from .provenance import Ancestor, Generation, LotUse, ProvenanceSource, provenance
from .recovery import (
    MaterialBalance,
    MaterialMassExceeded,
    NotRecoverable,
    RecoveryError,
    check_recovery,
    recovered_code,
)

__all__ = [
    "FULL_SHARE_BPS",
    "Ancestor",
    "Composition",
    "FlowItems",
    "FlowLink",
    "Generation",
    "InvalidComposition",
    "LotRecord",
    "LotUse",
    "Material",
    "MaterialBalance",
    "MaterialFlow",
    "MaterialMassExceeded",
    "MaterialsError",
    "MonthShare",
    "NotRecoverable",
    "Part",
    "ProvenanceSource",
    "RecoveryError",
    "UnknownMaterial",
    "bps_to_fraction",
    "bps_to_percent",
    "by_material",
    "catalogue",
    "check_recovery",
    "material",
    "material_code_bytes32",
    "material_code_from_bytes32",
    "material_flow",
    "material_label",
    "provenance",
    "recovered_code",
    "recovered_material",
    "recovery_excess",
    "recycled_grams",
    "recycled_share_bps",
    "share_bps",
]
