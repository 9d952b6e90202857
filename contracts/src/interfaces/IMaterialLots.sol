// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/**
 * @dev Material lots and their mass balance: a lot never supplies more grams than it holds.
 */
interface IMaterialLots {
    /// @dev What the chain knows of a lot. Masses are integer grams; `recycledShareBps` is in basis points.
    struct Lot {
        address owner;
        uint96 massGrams;
        uint96 allocatedGrams;
        uint16 recycledShareBps;
        bytes32 materialCode;
        bytes32 contentHash;
        bytes32 lineageHash;
    }

    /// @dev A lot with id `lotId` exists already.
    error LotAlreadyRegistered(bytes32 lotId);
    /// @dev No lot has id `lotId`.
    error LotNotFound(bytes32 lotId);
    /// @dev A lot's mass, or an allocation, must be more than zero grams.
    error ZeroMass();
    /// @dev `shareBps` is above 10000 basis points.
    error InvalidRecycledShare(uint16 shareBps);
    /// @dev `materialCode` is empty.
    error InvalidMaterialCode(bytes32 materialCode);
    /// @dev Taking `requestedGrams` from `lotId` would exceed its mass: only `availableGrams` are left.
    error LotMassExceeded(bytes32 lotId, uint256 requestedGrams, uint256 availableGrams);
    /// @dev `account` is neither the owner of `lotId` nor allowed `requestedGrams` of it (only `allowedGrams`).
    error LotAllocationUnauthorized(bytes32 lotId, address account, uint256 requestedGrams, uint256 allowedGrams);
    /// @dev `account` does not own `lotId`.
    error NotLotOwner(bytes32 lotId, address account);

    /// @dev A lot was registered. `gtin` is empty for a lot keyed by material code; `lineageHash` is zero for virgin
    /// or pre-consumer lots and `keccak256(abi.encode(itemIds))` for a lot recovered from items.
    event LotRegistered(
        bytes32 indexed lotId,
        address indexed owner,
        bytes32 indexed materialCode,
        string gtin,
        string lotNumber,
        uint96 massGrams,
        uint16 recycledShareBps,
        bytes32 contentHash,
        bytes32 lineageHash
    );
    /// @dev `account` took `grams` from `lotId` (to make items).
    event LotAllocated(bytes32 indexed lotId, address indexed account, uint96 grams);
    /// @dev The owner of `lotId` allowed `operator` to take `grams` from it.
    event LotAllowanceSet(bytes32 indexed lotId, address indexed operator, uint96 grams);

    function registerLot(
        string calldata gtin,
        string calldata lotNumber,
        bytes32 materialCode,
        uint96 massGrams,
        uint16 recycledShareBps,
        bytes32 contentHash
    ) external returns (bytes32 lotId);

    function registerMaterialLot(
        bytes32 materialCode,
        string calldata lotNumber,
        uint96 massGrams,
        uint16 recycledShareBps,
        bytes32 contentHash
    ) external returns (bytes32 lotId);

    function registerRecoveredLot(
        address recycler,
        bytes32 materialCode,
        string calldata lotNumber,
        uint96 massGrams,
        bytes32 contentHash,
        bytes32 lineageHash
    ) external returns (bytes32 lotId);

    function approve(bytes32 lotId, address operator, uint96 grams) external;

    function allocate(bytes32 lotId, address account, uint96 grams) external;

    function lot(bytes32 lotId) external view returns (Lot memory);

    function availableGrams(bytes32 lotId) external view returns (uint256);

    function allowance(bytes32 lotId, address operator) external view returns (uint256);
}
