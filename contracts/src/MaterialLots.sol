// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {RoleGated} from "./access/RoleGated.sol";
import {Roles} from "./access/Roles.sol";
import {ICompanyPrefixRegistry} from "./interfaces/ICompanyPrefixRegistry.sol";
import {IMaterialLots} from "./interfaces/IMaterialLots.sol";

/**
 * @title MaterialLots
 * @notice Material lots with mass balance. A brand registers lots under its own GTINs (or keyed by material code in
 * its own namespace); items draw grams from lots through the ItemRegistry, and the grams allocated from a lot can
 * never exceed its mass. Recycling creates recovered lots that are 100% recycled and record their source items.
 */
contract MaterialLots is RoleGated, IMaterialLots {
    uint16 private constant _FULL_SHARE_BPS = 10_000;

    /// @notice Where GTIN ownership is looked up.
    ICompanyPrefixRegistry public immutable prefixes;

    mapping(bytes32 lotId => Lot) private _lots;
    mapping(bytes32 lotId => mapping(address operator => uint96 grams)) private _allowances;

    constructor(IAccessControl access_, ICompanyPrefixRegistry prefixes_) RoleGated(access_) {
        prefixes = prefixes_;
    }

    /**
     * @notice Registers a lot identified by its GS1 key, GTIN plus batch/lot number.
     * @return lotId `keccak256(abi.encode(gtin, lotNumber))`.
     *
     * Requirements:
     * - the caller holds `BRAND_ROLE` and `gtin` lies under one of its company prefixes;
     * - the lot is new, its mass above zero, its recycled share at most 10000 bps, its material code non-empty.
     *
     * Emits a {LotRegistered} event.
     */
    function registerLot(
        string calldata gtin,
        string calldata lotNumber,
        bytes32 materialCode,
        uint96 massGrams,
        uint16 recycledShareBps,
        bytes32 contentHash
    ) external onlyRole(Roles.BRAND_ROLE) returns (bytes32 lotId) {
        prefixes.checkGtinOwner(gtin, msg.sender);
        lotId = keccak256(abi.encode(gtin, lotNumber));
        _register(lotId, msg.sender, materialCode, massGrams, recycledShareBps, contentHash, bytes32(0));
        emit LotRegistered(
            lotId, msg.sender, materialCode, gtin, lotNumber, massGrams, recycledShareBps, contentHash, bytes32(0)
        );
    }

    /**
     * @notice Registers a lot keyed by material code and lot number, in the caller's own namespace so that no one
     * can claim another actor's lot ids.
     * @return lotId `keccak256(abi.encode(msg.sender, materialCode, lotNumber))`.
     *
     * Requirements:
     * - the caller holds `BRAND_ROLE` or `RECYCLER_ROLE`;
     * - the lot is new, its mass above zero, its recycled share at most 10000 bps, its material code non-empty.
     *
     * Emits a {LotRegistered} event.
     */
    function registerMaterialLot(
        bytes32 materialCode,
        string calldata lotNumber,
        uint96 massGrams,
        uint16 recycledShareBps,
        bytes32 contentHash
    ) external returns (bytes32 lotId) {
        if (!_hasRole(Roles.BRAND_ROLE, msg.sender)) _checkRole(Roles.RECYCLER_ROLE, msg.sender);
        lotId = keccak256(abi.encode(msg.sender, materialCode, lotNumber));
        _register(lotId, msg.sender, materialCode, massGrams, recycledShareBps, contentHash, bytes32(0));
        emit LotRegistered(
            lotId, msg.sender, materialCode, "", lotNumber, massGrams, recycledShareBps, contentHash, bytes32(0)
        );
    }

    /**
     * @notice Registers a lot recovered by `recycler` from recycled items. Called by the ItemRegistry, which has
     * checked the items and that `massGrams` does not exceed their mass.
     * @return lotId `keccak256(abi.encode(recycler, materialCode, lotNumber))`.
     *
     * Requirements:
     * - the caller holds `LOT_MANAGER_ROLE`;
     * - the lot is new, its mass above zero, its material code non-empty.
     *
     * Emits a {LotRegistered} event with a recycled share of 10000 bps.
     */
    function registerRecoveredLot(
        address recycler,
        bytes32 materialCode,
        string calldata lotNumber,
        uint96 massGrams,
        bytes32 contentHash,
        bytes32 lineageHash
    ) external onlyRole(Roles.LOT_MANAGER_ROLE) returns (bytes32 lotId) {
        lotId = keccak256(abi.encode(recycler, materialCode, lotNumber));
        _register(lotId, recycler, materialCode, massGrams, _FULL_SHARE_BPS, contentHash, lineageHash);
        emit LotRegistered(
            lotId, recycler, materialCode, "", lotNumber, massGrams, _FULL_SHARE_BPS, contentHash, lineageHash
        );
    }

    /**
     * @notice Allows `operator` to take up to `grams` from lot `lotId` (replacing any earlier allowance). This is how
     * a recycler supplies recovered material to a brand.
     *
     * Requirements:
     * - the caller owns the lot.
     *
     * Emits a {LotAllowanceSet} event.
     */
    function approve(bytes32 lotId, address operator, uint96 grams) external {
        if (_lots[lotId].owner != msg.sender) revert NotLotOwner(lotId, msg.sender);
        _allowances[lotId][operator] = grams;
        emit LotAllowanceSet(lotId, operator, grams);
    }

    /**
     * @notice Takes `grams` from lot `lotId` on behalf of `account`, which makes items from it.
     *
     * Requirements:
     * - the caller holds `LOT_MANAGER_ROLE`;
     * - the lot exists and `grams` is above zero;
     * - `account` owns the lot or is allowed at least `grams` of it (the allowance shrinks accordingly);
     * - the lot has at least `grams` left.
     *
     * Emits a {LotAllocated} event.
     */
    function allocate(bytes32 lotId, address account, uint96 grams) external onlyRole(Roles.LOT_MANAGER_ROLE) {
        Lot storage stored = _lots[lotId];
        address owner = stored.owner;
        if (owner == address(0)) revert LotNotFound(lotId);
        if (grams == 0) revert ZeroMass();
        if (account != owner) {
            uint96 allowed = _allowances[lotId][account];
            if (allowed < grams) revert LotAllocationUnauthorized(lotId, account, grams, allowed);
            _allowances[lotId][account] = allowed - grams;
        }
        uint256 available = stored.massGrams - stored.allocatedGrams;
        if (grams > available) revert LotMassExceeded(lotId, grams, available);
        stored.allocatedGrams += grams;
        emit LotAllocated(lotId, account, grams);
    }

    /// @notice Everything the chain knows of lot `lotId` (a zero owner when there is none).
    function lot(bytes32 lotId) external view returns (Lot memory) {
        return _lots[lotId];
    }

    /// @notice Grams of lot `lotId` not yet allocated.
    function availableGrams(bytes32 lotId) external view returns (uint256) {
        Lot storage stored = _lots[lotId];
        return stored.massGrams - stored.allocatedGrams;
    }

    /// @notice Grams of lot `lotId` that `operator` may still take.
    function allowance(bytes32 lotId, address operator) external view returns (uint256) {
        return _allowances[lotId][operator];
    }

    function _register(
        bytes32 lotId,
        address owner,
        bytes32 materialCode,
        uint96 massGrams,
        uint16 recycledShareBps,
        bytes32 contentHash,
        bytes32 lineageHash
    ) private {
        if (_lots[lotId].owner != address(0)) revert LotAlreadyRegistered(lotId);
        if (massGrams == 0) revert ZeroMass();
        if (recycledShareBps > _FULL_SHARE_BPS) revert InvalidRecycledShare(recycledShareBps);
        if (materialCode == bytes32(0)) revert InvalidMaterialCode(materialCode);
        _lots[lotId] = Lot({
            owner: owner,
            massGrams: massGrams,
            allocatedGrams: 0,
            recycledShareBps: recycledShareBps,
            materialCode: materialCode,
            contentHash: contentHash,
            lineageHash: lineageHash
        });
    }
}
