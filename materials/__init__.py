"""The material domain: the catalogue of materials, composition in integer grams, mass balance and recycled-content
accounting (the ISO 22095 mass balance model). The contracts enforce the same rules; everyone else asks here."""

from .accounting import (
    FULL_SHARE_BPS,
    Composition,
    Generation,
    LotRecord,
    MassBalance,
    MaterialGraph,
    Part,
    by_material,
    provenance,
    recycled_grams,
    recycled_share_bps,
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
from .errors import (
    AlreadyRecycled,
    InvalidComposition,
    MassBalanceExceeded,
    MaterialsError,
    RecoveredMassExceeded,
    UnknownMaterial,
)
from .flow import FlowItems, FlowLink, MaterialFlow, MonthShare, material_flow

__all__ = [
    "FULL_SHARE_BPS",
    "AlreadyRecycled",
    "Composition",
    "FlowItems",
    "FlowLink",
    "Generation",
    "InvalidComposition",
    "LotRecord",
    "MassBalance",
    "MassBalanceExceeded",
    "Material",
    "MaterialFlow",
    "MaterialGraph",
    "MaterialsError",
    "MonthShare",
    "Part",
    "RecoveredMassExceeded",
    "UnknownMaterial",
    "by_material",
    "catalogue",
    "material",
    "material_code_bytes32",
    "material_code_from_bytes32",
    "material_flow",
    "material_label",
    "provenance",
    "recovered_material",
    "recycled_grams",
    "recycled_share_bps",
]
