// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/**
 * @dev Items, their composition and their lifecycle state machine, and recycling into recovered lots.
 */
interface IItemRegistry {
    /// @dev Lifecycle states. `None` means not registered (or, for an item of a run, not yet materialized).
    enum State {
        None,
        Manufactured,
        Sold,
        InUse,
        Returned,
        Collected,
        Refurbished,
        Resold,
        Recycled,
        Disposed
    }

    /// @dev What the chain stores for a registered item: one storage slot.
    struct Item {
        address brand;
        uint88 massGrams;
        State state;
    }

    /// @dev What the chain stores for a committed run of items: one storage slot. Items are materialized lazily;
    /// `unmaterialized` counts down from the run's `itemCount`, so no more items than the run paid grams for can
    /// ever get a state record, whatever the Merkle root holds.
    struct Run {
        address brand;
        uint64 itemMassGrams;
        uint32 unmaterialized;
    }

    /// @dev A run of items to commit: `itemCount` items of `gtin`, each made of `gramsPerItem[i]` of `lotIds[i]`.
    /// `itemsRoot` is the OpenZeppelin StandardMerkleTree root (leaf type bytes32) of their item ids, and `serials`
    /// their serials, newline-separated (logged, not parsed, so the run can be rebuilt from the chain).
    struct RunInput {
        string gtin;
        bytes32 itemsRoot;
        uint32 itemCount;
        bytes32[] lotIds;
        uint96[] gramsPerItem;
        bytes32 contentHash;
        bytes serials;
    }

    /// @dev One recovered lot to make from recycled items: `massGrams` of material `materialCode`, numbered
    /// `lotNumber` in the recycler's namespace.
    struct RecoveredLot {
        bytes32 materialCode;
        string lotNumber;
        uint96 massGrams;
        bytes32 contentHash;
    }

    /// @dev `serial` is not 1 to 20 characters of GS1 AI (21)'s character set 82.
    error InvalidSerial(string serial);
    /// @dev An item needs at least one (lot, grams) part, with as many grams entries as lots.
    error InvalidComposition(uint256 lotCount, uint256 gramsCount);
    /// @dev A run must hold at least one item.
    error EmptyRun();
    /// @dev Item `itemId` is registered already.
    error ItemAlreadyRegistered(bytes32 itemId);
    /// @dev No run has id `runId`.
    error RunNotFound(bytes32 runId);
    /// @dev A run with id `runId` exists already.
    error RunAlreadyRegistered(bytes32 runId);
    /// @dev The proof does not place item `itemId` in run `runId`.
    error InvalidRunProof(bytes32 runId, bytes32 itemId);
    /// @dev Every one of the `itemCount` items run `runId` was committed with is materialized already: its root holds
    /// more items than the run took grams for.
    error RunItemCountExceeded(bytes32 runId);
    /// @dev No item has id `itemId`.
    error ItemNotFound(bytes32 itemId);
    /// @dev Item `itemId` may not go from `current` to `requested`; the lifecycle graph lets it go to the states
    /// `allowed` instead (see {nextStates}), none when `current` is terminal.
    error IllegalTransition(bytes32 itemId, State current, State requested, State[] allowed);
    /// @dev `account` holds no role allowed to move item `itemId` from `current` to `requested`.
    error UnauthorizedTransition(bytes32 itemId, address account, State current, State requested);
    /// @dev `account` holds a role allowed to move item `itemId`, but the item's `brand` has not authorised it as a
    /// partner in that role (see {setPartner}).
    error NotBrandPartner(bytes32 itemId, address brand, address account);
    /// @dev Brands authorise partners as retailers, recyclers or repairers only; `role` is none of them.
    error InvalidPartnerRole(bytes32 role);
    /// @dev The recovered lots, `requestedGrams` together, exceed the `recycledGrams` of the items they come from.
    error RecoveredMassExceeded(uint256 requestedGrams, uint256 recycledGrams);
    /// @dev Recycling needs at least one item.
    error NothingToRecycle();
    /// @dev Recycling makes at least one recovered lot.
    error NoRecoveredLot();
    /// @dev Recycling makes one recovered lot per material: `materialCode` is listed twice.
    error DuplicateRecoveredMaterial(bytes32 materialCode);

    /// @dev `brand` registered item `itemId` = `keccak256(abi.encode(gtin, serial))`, made of `grams[i]` of
    /// `lotIds[i]`.
    event ItemRegistered(
        bytes32 indexed itemId,
        address indexed brand,
        string gtin,
        string serial,
        bytes32[] lotIds,
        uint96[] grams,
        bytes32 contentHash
    );
    /// @dev `brand` committed a run of `itemCount` items of `gtin`; `itemsRoot` is the OpenZeppelin
    /// StandardMerkleTree root (leaf type bytes32) of their item ids. Followed by {RunContents}.
    event RunRegistered(
        bytes32 indexed runId,
        address indexed brand,
        string gtin,
        bytes32 itemsRoot,
        uint32 itemCount,
        bytes32 contentHash
    );
    /// @dev Each item of run `runId` is made of `gramsPerItem[i]` of `lotIds[i]`; `serials` lists the run's serials,
    /// newline-separated, so the run can be rebuilt from logs alone.
    event RunContents(bytes32 indexed runId, bytes32[] lotIds, uint96[] gramsPerItem, bytes serials);
    /// @dev Item `itemId` of run `runId` got its own state record, proven a member of the run.
    event ItemMaterialized(bytes32 indexed itemId, bytes32 indexed runId, string serial);
    /// @dev `account` moved item `itemId` from `from` to `to`.
    event ItemStateChanged(bytes32 indexed itemId, State from, State to, address indexed account);
    /// @dev `brand` authorised (`authorized`) or stopped authorising `partner` to move its items in role `role`.
    event PartnerSet(address indexed brand, address indexed partner, bytes32 indexed role, bool authorized);
    /// @dev `recycler` recycled `itemIds` into recovered lot `lotId` of `massGrams` (one event per recovered lot: the
    /// same items may yield several, one per material).
    event ItemsRecycled(bytes32 indexed lotId, address indexed recycler, bytes32[] itemIds, uint96 massGrams);

    function registerItem(
        string calldata gtin,
        string calldata serial,
        bytes32[] calldata lotIds,
        uint96[] calldata grams,
        bytes32 contentHash
    ) external returns (bytes32 itemId);

    function registerRun(RunInput calldata input) external returns (bytes32 runId);

    function materialize(
        string calldata gtin,
        string calldata serial,
        bytes32 itemsRoot,
        bytes32[] calldata proof
    ) external returns (bytes32 itemId);

    function transition(bytes32 itemId, State to) external;

    function transitionRunItem(
        string calldata gtin,
        string calldata serial,
        bytes32 itemsRoot,
        bytes32[] calldata proof,
        State to
    ) external returns (bytes32 itemId);

    function recycle(
        bytes32[] calldata itemIds,
        RecoveredLot[] calldata outputs
    ) external returns (bytes32[] memory lotIds);

    function setPartner(address partner, bytes32 role, bool authorized) external;

    function item(bytes32 itemId) external view returns (Item memory);

    function run(bytes32 runId) external view returns (Run memory);

    function isPartner(address brand, address partner, bytes32 role) external view returns (bool);

    function canTransition(State from, State to, address account, address brand) external view returns (bool);

    function nextStates(State from) external pure returns (State[] memory);
}
