// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {RoleGated} from "./access/RoleGated.sol";
import {Roles} from "./access/Roles.sol";
import {ICompanyPrefixRegistry} from "./interfaces/ICompanyPrefixRegistry.sol";
import {IItemRegistry} from "./interfaces/IItemRegistry.sol";
import {IMaterialLots} from "./interfaces/IMaterialLots.sol";

/**
 * @title ItemRegistry
 * @notice Items made from material lots, their lifecycle, and recycling into recovered lots.
 *
 * An item is `keccak256(abi.encode(gtin, serial))`. A brand registers one item with its own storage record, or
 * commits a whole run of items as one Merkle root: each item of a run gets its storage record lazily, when its first
 * lifecycle transition proves its membership. Either way the lots' grams are taken at registration, so mass balance
 * holds from the start.
 *
 * The lifecycle is an explicit state graph; each edge names the roles that may take it (see {canTransition}).
 * A brand acts only on its own items; a retailer, recycler or repairer only on the items of brands that authorised it
 * as their partner in that role ({setPartner}). Recycling happens only through {recycle}, which moves every item to
 * `Recycled` (a terminal state, so an item is recycled at most once) and creates recovered lots, one per material, no
 * heavier together than them.
 */
contract ItemRegistry is RoleGated, IItemRegistry {
    using SafeCast for uint256;

    // Role bits of the transition table.
    uint8 private constant _OWNING_BRAND = 1;
    uint8 private constant _RETAILER = 2;
    uint8 private constant _RECYCLER = 4;
    uint8 private constant _REPAIRER = 8;
    uint256 private constant _MAX_SERIAL_LENGTH = 20;

    /// @notice Where GTIN ownership is looked up.
    ICompanyPrefixRegistry public immutable prefixes;
    /// @notice Where lots' grams are taken from and recovered lots are created.
    IMaterialLots public immutable lots;

    mapping(bytes32 itemId => Item) private _items;
    mapping(bytes32 runId => Run) private _runs;
    // For each brand, the role bits (_RETAILER, _RECYCLER, _REPAIRER) it has authorised each partner in.
    mapping(address brand => mapping(address partner => uint8 roleBits)) private _partners;

    constructor(IAccessControl access_, ICompanyPrefixRegistry prefixes_, IMaterialLots lots_) RoleGated(access_) {
        prefixes = prefixes_;
        lots = lots_;
    }

    /**
     * @notice Registers one item with its own storage record, taking its grams from its lots.
     * @return itemId `keccak256(abi.encode(gtin, serial))`.
     *
     * Requirements:
     * - the caller holds `BRAND_ROLE` and `gtin` lies under one of its company prefixes;
     * - `serial` is 1 to 20 characters of GS1 character set 82;
     * - the composition has at least one part and matching lengths; the caller may allocate from each lot
     *   and each lot has the grams left;
     * - the item is not registered.
     *
     * Emits an {ItemRegistered} event, an {ItemStateChanged} event to `Manufactured`, and
     * {IMaterialLots-LotAllocated} events.
     */
    function registerItem(
        string calldata gtin,
        string calldata serial,
        bytes32[] calldata lotIds,
        uint96[] calldata grams,
        bytes32 contentHash
    ) external onlyRole(Roles.BRAND_ROLE) returns (bytes32 itemId) {
        prefixes.checkGtinOwner(gtin, msg.sender);
        _checkSerial(serial);
        itemId = keccak256(abi.encode(gtin, serial));
        if (_items[itemId].state != State.None) revert ItemAlreadyRegistered(itemId);
        _items[itemId] = Item({brand: msg.sender, massGrams: _massOf(lotIds, grams), state: State.None});
        _draw(lotIds, grams, 1);
        emit ItemRegistered(itemId, msg.sender, gtin, serial, lotIds, grams, contentHash);
        // The state is written after the calls into MaterialLots, so that the logs read allocations, registration,
        // state: MaterialLots is this deployment's immutable lot registry and makes no calls back, so nothing can
        // enter between the calls and this write.
        // slither-disable-next-line reentrancy-no-eth
        _update(itemId, State.Manufactured, address(0));
    }

    /**
     * @notice Commits a run of `input.itemCount` items of `input.gtin`, all of one composition, as one Merkle root,
     * taking `itemCount × gramsPerItem[i]` from each lot. No per-item storage is written.
     * @return runId `keccak256(abi.encode(gtin, itemsRoot))`.
     *
     * Requirements:
     * - the caller holds `BRAND_ROLE` and `gtin` lies under one of its company prefixes;
     * - `itemCount` is above zero; the composition is valid (one item's mass fits 64 bits) and the lots have
     *   the grams;
     * - the run is new.
     *
     * Emits {RunRegistered} and {RunContents} events and {IMaterialLots-LotAllocated} events.
     */
    function registerRun(RunInput calldata input) external onlyRole(Roles.BRAND_ROLE) returns (bytes32 runId) {
        prefixes.checkGtinOwner(input.gtin, msg.sender);
        if (input.itemCount == 0) revert EmptyRun();
        runId = keccak256(abi.encode(input.gtin, input.itemsRoot));
        if (_runs[runId].brand != address(0)) revert RunAlreadyRegistered(runId);
        uint64 itemMass = SafeCast.toUint64(_massOf(input.lotIds, input.gramsPerItem));
        _runs[runId] = Run({brand: msg.sender, itemMassGrams: itemMass, unmaterialized: input.itemCount});
        _draw(input.lotIds, input.gramsPerItem, input.itemCount);
        emit RunRegistered(runId, msg.sender, input.gtin, input.itemsRoot, input.itemCount, input.contentHash);
        emit RunContents(runId, input.lotIds, input.gramsPerItem, input.serials);
    }

    /**
     * @notice Gives an item of a committed run its own state record, `Manufactured`. Anyone may call it: it only
     * records what the proof shows.
     * @return itemId The materialized item.
     *
     * Requirements:
     * - a run of `gtin` with root `itemsRoot` exists and `proof` shows the item in it;
     * - `serial` is 1 to 20 characters of GS1 character set 82;
     * - the item has no state record yet, and fewer than the run's `itemCount` items have one (so a root holding
     *   more items than the run took grams for cannot mint mass).
     *
     * Emits an {ItemMaterialized} event and an {ItemStateChanged} event to `Manufactured`.
     */
    function materialize(
        string calldata gtin,
        string calldata serial,
        bytes32 itemsRoot,
        bytes32[] calldata proof
    ) public returns (bytes32 itemId) {
        bytes32 runId = keccak256(abi.encode(gtin, itemsRoot));
        Run storage committed = _runs[runId];
        address brand = committed.brand;
        if (brand == address(0)) revert RunNotFound(runId);
        _checkSerial(serial);
        itemId = keccak256(abi.encode(gtin, serial));
        // Same leaf as OpenZeppelin merkle-tree's StandardMerkleTree: double-hashed to rule out second preimages.
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(itemId))));
        if (!MerkleProof.verifyCalldata(proof, itemsRoot, leaf)) revert InvalidRunProof(runId, itemId);
        if (_items[itemId].state != State.None) revert ItemAlreadyRegistered(itemId);
        uint32 unmaterialized = committed.unmaterialized;
        if (unmaterialized == 0) revert RunItemCountExceeded(runId);
        committed.unmaterialized = unmaterialized - 1;
        _items[itemId] = Item({brand: brand, massGrams: committed.itemMassGrams, state: State.None});
        emit ItemMaterialized(itemId, runId, serial);
        _update(itemId, State.Manufactured, address(0));
    }

    /**
     * @notice Moves item `itemId` to state `to`.
     *
     * Requirements:
     * - the item exists and the edge from its state to `to` is in the lifecycle graph (`Recycled` only through
     *   {recycle});
     * - the caller is the item's brand, on an edge open to brands, or holds another role allowed on that edge and
     *   the item's brand has authorised it as its partner in that role ({NotBrandPartner} otherwise).
     *
     * Emits an {ItemStateChanged} event.
     */
    function transition(bytes32 itemId, State to) public {
        if (to == State.Recycled) {
            State current = _items[itemId].state;
            if (current == State.None) revert ItemNotFound(itemId);
            revert IllegalTransition(itemId, current, to, nextStates(current));
        }
        _update(itemId, to, msg.sender);
    }

    /**
     * @notice Materializes an item of a run (see {materialize}) and moves it to `to` (see {transition}) in one call.
     * @return itemId The item moved.
     *
     * Emits {ItemMaterialized} and two {ItemStateChanged} events.
     */
    function transitionRunItem(
        string calldata gtin,
        string calldata serial,
        bytes32 itemsRoot,
        bytes32[] calldata proof,
        State to
    ) external returns (bytes32 itemId) {
        itemId = materialize(gtin, serial, itemsRoot, proof);
        transition(itemId, to);
    }

    /**
     * @notice Recycles `itemIds` into recovered lots, one per material (`outputs`), owned by the caller, 100%
     * recycled, each with lineage hash `keccak256(abi.encode(itemIds))`.
     * @return lotIds The recovered lots, in the order of `outputs`: each
     * `keccak256(abi.encode(msg.sender, materialCode, lotNumber))`.
     *
     * The chain checks the total: the lots together weigh at most the items. It does not hold the items' grams by
     * material (their compositions are in the {ItemRegistered} and {RunContents} logs only), so that a lot of
     * material M holds at most the grams of M the items held is checked before the transaction, off-chain.
     *
     * Requirements:
     * - the caller holds `RECYCLER_ROLE`;
     * - `itemIds` is not empty and every item in it is `Collected` (so none is recycled twice, nor listed twice);
     * - every item's brand has authorised the caller as its recycler ({setPartner});
     * - `outputs` is not empty, names each material once, and its masses, each above zero, add up to at most the
     *   items' total mass;
     * - every recovered lot is new.
     *
     * Emits an {ItemStateChanged} event per item, then per recovered lot an {IMaterialLots-LotRegistered} event
     * and an {ItemsRecycled} event.
     */
    function recycle(
        bytes32[] calldata itemIds,
        RecoveredLot[] calldata outputs
    ) external onlyRole(Roles.RECYCLER_ROLE) returns (bytes32[] memory lotIds) {
        uint256 recycledGrams = _markRecycled(itemIds);
        uint256 recoveredGrams = _recoveredMass(outputs);
        if (recoveredGrams > recycledGrams) revert RecoveredMassExceeded(recoveredGrams, recycledGrams);
        bytes32 lineageHash = keccak256(abi.encode(itemIds));
        lotIds = new bytes32[](outputs.length);
        for (uint256 i = 0; i < outputs.length; ++i) {
            RecoveredLot calldata output = outputs[i];
            // One call per recovered material (a handful, bounded by the caller's own input) into the immutable
            // MaterialLots of this deployment, which makes no calls back.
            // slither-disable-next-line calls-loop
            lotIds[i] = lots.registerRecoveredLot(
                msg.sender, output.materialCode, output.lotNumber, output.massGrams, output.contentHash, lineageHash
            );
            emit ItemsRecycled(lotIds[i], msg.sender, itemIds, output.massGrams);
        }
    }

    /// @dev The recovered lots' total mass; reverts unless there is at least one and each material is listed once.
    function _recoveredMass(RecoveredLot[] calldata outputs) private pure returns (uint256 total) {
        if (outputs.length == 0) revert NoRecoveredLot();
        for (uint256 i = 0; i < outputs.length; ++i) {
            bytes32 code = outputs[i].materialCode;
            for (uint256 j = 0; j < i; ++j) {
                if (outputs[j].materialCode == code) revert DuplicateRecoveredMaterial(code);
            }
            total += outputs[i].massGrams;
        }
    }

    /// @dev Moves every item from `Collected` to `Recycled`; returns their total mass.
    function _markRecycled(bytes32[] calldata itemIds) private returns (uint256 recycledGrams) {
        if (itemIds.length == 0) revert NothingToRecycle();
        for (uint256 i = 0; i < itemIds.length; ++i) {
            bytes32 itemId = itemIds[i];
            // Written, then checked (as OpenZeppelin's ERC721 `_transfer` checks `_update`'s previous owner): a wrong
            // state reverts the whole call.
            State from = _update(itemId, State.Recycled, address(0));
            if (from != State.Collected) {
                if (from == State.None) revert ItemNotFound(itemId);
                revert IllegalTransition(itemId, from, State.Recycled, nextStates(from));
            }
            Item storage stored = _items[itemId];
            address brand = stored.brand;
            if (_partners[brand][msg.sender] & _RECYCLER == 0) revert NotBrandPartner(itemId, brand, msg.sender);
            // At most one uint88 mass per calldata item: the sum cannot overflow 256 bits.
            unchecked {
                recycledGrams += stored.massGrams;
            }
        }
    }

    /**
     * @notice Authorises `partner` to move the caller's items as its retailer, recycler or repairer (`role`), or
     * stops authorising it (`authorized` false): along the lifecycle edges open to that role and, for a recycler,
     * through {recycle}. The partner needs the role itself too; revoking either stops it at once.
     *
     * Requirements:
     * - the caller holds `BRAND_ROLE`;
     * - `role` is `RETAILER_ROLE`, `RECYCLER_ROLE` or `REPAIRER_ROLE` ({InvalidPartnerRole} otherwise).
     *
     * Emits a {PartnerSet} event.
     */
    function setPartner(address partner, bytes32 role, bool authorized) external onlyRole(Roles.BRAND_ROLE) {
        uint8 bit = _partnerBit(role);
        uint8 roleBits = _partners[msg.sender][partner];
        _partners[msg.sender][partner] = authorized ? roleBits | bit : roleBits & ~bit;
        emit PartnerSet(msg.sender, partner, role, authorized);
    }

    /// @notice Whether `brand` has authorised `partner` as its retailer, recycler or repairer (`role`).
    function isPartner(address brand, address partner, bytes32 role) external view returns (bool) {
        return _partners[brand][partner] & _partnerBit(role) != 0;
    }

    /// @notice The state record of `itemId` (state `None` when it has none).
    function item(bytes32 itemId) external view returns (Item memory) {
        return _items[itemId];
    }

    /// @notice The committed run `runId` (a zero brand when there is none).
    function run(bytes32 runId) external view returns (Run memory) {
        return _runs[runId];
    }

    /**
     * @notice Whether `account` may move an item of `brand` from `from` to `to`: the edge is in the graph, and
     * `account` is `brand` (holding `BRAND_ROLE`) on an edge open to brands, or holds a role allowed on the edge in
     * which `brand` has authorised it as a partner.
     */
    function canTransition(State from, State to, address account, address brand) public view returns (bool) {
        uint8 allowed = _allowedRoles(from, to);
        if (allowed == 0) return false;
        if (allowed & _OWNING_BRAND != 0 && account == brand && _hasRole(Roles.BRAND_ROLE, account)) return true;
        uint8 partnered = allowed & _partners[brand][account];
        if (partnered == 0) return false;
        if (partnered & _RETAILER != 0 && _hasRole(Roles.RETAILER_ROLE, account)) return true;
        if (partnered & _RECYCLER != 0 && _hasRole(Roles.RECYCLER_ROLE, account)) return true;
        if (partnered & _REPAIRER != 0 && _hasRole(Roles.REPAIRER_ROLE, account)) return true;
        return false;
    }

    /**
     * @notice The states the lifecycle graph lets an item in `from` go to next, whoever asks, in the enum's order
     * (`Recycled` from `Collected` included, though only {recycle} takes it); none from a terminal state. What
     * {IllegalTransition} names as allowed.
     */
    function nextStates(State from) public pure returns (State[] memory next) {
        uint256 last = uint256(type(State).max);
        uint256 count = 0;
        for (uint256 i = 1; i <= last; ++i) {
            if (_allowedRoles(from, State(i)) != 0) ++count;
        }
        next = new State[](count);
        count = 0;
        for (uint256 i = 1; i <= last; ++i) {
            if (_allowedRoles(from, State(i)) != 0) {
                next[count] = State(i);
                ++count;
            }
        }
    }

    /**
     * @dev Moves item `itemId` to `to` and emits {ItemStateChanged}: the one place an item's state is written
     * (OpenZeppelin's ERC721 `_update` is the model). Returns the state the item was in.
     *
     * With a non-zero `auth`, the move must be an edge of the lifecycle graph that `auth` may take (see
     * {canTransition}); with `auth` zero the caller has checked it (registration, recycling).
     */
    function _update(bytes32 itemId, State to, address auth) private returns (State from) {
        Item storage stored = _items[itemId];
        from = stored.state;
        if (auth != address(0)) _checkAuthorized(itemId, from, to, stored.brand, auth);
        stored.state = to;
        emit ItemStateChanged(itemId, from, to, msg.sender);
    }

    function _checkAuthorized(bytes32 itemId, State from, State to, address brand, address auth) private view {
        if (from == State.None) revert ItemNotFound(itemId);
        uint8 allowed = _allowedRoles(from, to);
        if (allowed == 0) revert IllegalTransition(itemId, from, to, nextStates(from));
        if (!canTransition(from, to, auth, brand)) {
            if (_holdsPartnerRole(allowed, auth)) revert NotBrandPartner(itemId, brand, auth);
            revert UnauthorizedTransition(itemId, auth, from, to);
        }
    }

    /// @dev Whether `account` holds one of the partner roles (retailer, recycler, repairer) among `allowed`.
    function _holdsPartnerRole(uint8 allowed, address account) private view returns (bool) {
        return (allowed & _RETAILER != 0 && _hasRole(Roles.RETAILER_ROLE, account)) ||
            (allowed & _RECYCLER != 0 && _hasRole(Roles.RECYCLER_ROLE, account)) ||
            (allowed & _REPAIRER != 0 && _hasRole(Roles.REPAIRER_ROLE, account));
    }

    /// @dev The role bit of a partner role; reverts for any other role.
    function _partnerBit(bytes32 role) private pure returns (uint8) {
        if (role == Roles.RETAILER_ROLE) return _RETAILER;
        if (role == Roles.RECYCLER_ROLE) return _RECYCLER;
        if (role == Roles.REPAIRER_ROLE) return _REPAIRER;
        revert InvalidPartnerRole(role);
    }

    /**
     * @dev The lifecycle graph: for each edge, the role bits allowed to take it; 0 for no edge.
     */
    function _allowedRoles(State from, State to) private pure returns (uint8) {
        // Intake: a recycler collects an item from wherever it is in circulation (deadstock never sold, a gift or an
        // item sold through another channel whose sale was never recorded, an item sold but never marked in use).
        if (to == State.Collected) {
            return from == State.Manufactured || from == State.Sold || from == State.Resold || from == State.InUse ||
                from == State.Returned || from == State.Refurbished
                ? _RECYCLER
                : 0;
        }
        if (from == State.Manufactured) {
            if (to == State.Sold) return _OWNING_BRAND | _RETAILER;
            // An unsold item comes back (a retailer's return to the brand, a return from another channel).
            if (to == State.Returned) return _OWNING_BRAND | _RETAILER | _RECYCLER;
            if (to == State.Disposed) return _OWNING_BRAND | _RECYCLER;
        } else if (from == State.Sold || from == State.Resold) {
            if (to == State.InUse || to == State.Returned) return _OWNING_BRAND | _RETAILER;
        } else if (from == State.InUse) {
            if (to == State.Returned) return _OWNING_BRAND | _RETAILER | _RECYCLER;
            if (to == State.Refurbished) return _OWNING_BRAND | _REPAIRER;
        } else if (from == State.Returned) {
            if (to == State.Disposed) return _RECYCLER;
            if (to == State.Refurbished) return _OWNING_BRAND | _REPAIRER;
            if (to == State.Resold) return _OWNING_BRAND | _RETAILER;
        } else if (from == State.Collected) {
            if (to == State.Recycled || to == State.Disposed) return _RECYCLER;
            if (to == State.Refurbished) return _OWNING_BRAND | _REPAIRER;
        } else if (from == State.Refurbished) {
            if (to == State.InUse) return _OWNING_BRAND | _RETAILER | _REPAIRER;
            if (to == State.Resold) return _OWNING_BRAND | _RETAILER;
        }
        return 0;
    }

    /// @dev The mass of one item made of `grams[i]` of `lotIds[i]`; reverts on an invalid composition.
    function _massOf(bytes32[] calldata lotIds, uint96[] calldata grams) private pure returns (uint88) {
        if (lotIds.length == 0 || lotIds.length != grams.length) {
            revert InvalidComposition(lotIds.length, grams.length);
        }
        uint256 total = 0;
        for (uint256 i = 0; i < grams.length; ++i) {
            total += grams[i];
        }
        return total.toUint88();
    }

    /// @dev Takes `copies × grams[i]` from each lot `lotIds[i]` for the caller (MaterialLots checks mass balance).
    function _draw(bytes32[] calldata lotIds, uint96[] calldata grams, uint256 copies) private {
        for (uint256 i = 0; i < lotIds.length; ++i) {
            // One call per part of the composition (bounded by the caller's own input, paid by the caller) into the
            // immutable MaterialLots of this deployment, which makes no calls back.
            // slither-disable-next-line calls-loop
            lots.allocate(lotIds[i], msg.sender, SafeCast.toUint96(grams[i] * copies));
        }
    }

    /// @dev GS1 AI (21) serial: 1 to 20 characters of character set 82 (GS1 General Specifications 7.11).
    function _checkSerial(string calldata serial) private pure {
        bytes calldata chars = bytes(serial);
        if (chars.length == 0 || chars.length > _MAX_SERIAL_LENGTH) revert InvalidSerial(serial);
        for (uint256 i = 0; i < chars.length; ++i) {
            bytes1 c = chars[i];
            // CSET 82: ! " % & ' ( ) * + , - . / 0-9 : ; < = > ? A-Z _ a-z
            bool ok = (c >= 0x21 && c <= 0x22) || (c >= 0x25 && c <= 0x3F) || (c >= 0x41 && c <= 0x5A) ||
                c == 0x5F || (c >= 0x61 && c <= 0x7A);
            if (!ok) revert InvalidSerial(serial);
        }
    }
}
