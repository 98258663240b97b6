/* zg_rbtree.h — intrusive red-black tree (ngx_rbtree's shape).
 *
 * A node lives inside its entry; zg_data_of(node, type, member) gets the
 * entry back.  Nodes are ordered by a 32-bit key; entries whose keys are
 * equal (hash collisions) are ordered by a tie-break on the key bytes.
 *
 * Trees keyed by "hash + key bytes" need one function,
 *     int cmp(const zg_rbtree_node_t *n, const void *arg)
 * that compares the key bytes of n's entry with the bytes described by arg
 * (<0, 0, >0 like memcmp(n, arg)).  Look up with
 *     zg_rbtree_lookup(t, hash, cmp, &key);
 * and insert with the same cmp (no insert function needed):
 *     node->key = hash;
 *     zg_rbtree_insert_keyed(t, node, cmp, &key);
 * Trees that need only the key use zg_rbtree_init(t, s, zg_rbtree_insert_value)
 * and zg_rbtree_insert().  A custom zg_rbtree_insert_pt places `node` below
 * `root` as a leaf (left/right = sentinel, parent set, red via zg_rbt_red);
 * zg_rbtree_insert then rebalances. */
#ifndef ZG_RBTREE_H
#define ZG_RBTREE_H

#include <string.h>

#include "zg_core.h"

typedef uint32_t zg_rbtree_key_t;

typedef struct zg_rbtree_node_s zg_rbtree_node_t;

struct zg_rbtree_node_s {
    zg_rbtree_key_t key;
    zg_rbtree_node_t *left;
    zg_rbtree_node_t *right;
    zg_rbtree_node_t *parent;
    unsigned char color;        /* 1 red, 0 black */
    unsigned char data;         /* free for the user */
};

typedef void (*zg_rbtree_insert_pt)(zg_rbtree_node_t *root, zg_rbtree_node_t *node,
                                    zg_rbtree_node_t *sentinel);

/* <0, 0, >0 as the entry of n compares with the key described by arg */
typedef int (*zg_rbtree_cmp_pt)(const zg_rbtree_node_t *n, const void *arg);

/* The tie-break of byte-string keys (the limiters'): memcmp over the common
 * length, then the shorter first. */
static inline int zg_rbtree_key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    int rc = memcmp(a, b, alen < blen ? alen : blen);

    if (rc != 0) {
        return rc;
    }
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* the tree and its sentinel live in the same memory as the nodes (a zone) */
typedef struct {
    zg_rbtree_node_t *root;
    zg_rbtree_node_t *sentinel;
    zg_rbtree_insert_pt insert;
} zg_rbtree_t;

#define zg_rbt_red(n)       ((n)->color = 1)
#define zg_rbt_black(n)     ((n)->color = 0)
#define zg_rbt_is_red(n)    ((n)->color)
#define zg_rbt_is_black(n)  (!zg_rbt_is_red(n))

/* Makes t an empty tree using sentinel (a node owned by the tree's owner,
 * never in the tree) and insert to place new nodes. */
void zg_rbtree_init(zg_rbtree_t *t, zg_rbtree_node_t *sentinel, zg_rbtree_insert_pt insert);

/* Inserts n (n->key set) with t->insert, then rebalances. */
void zg_rbtree_insert(zg_rbtree_t *t, zg_rbtree_node_t *n);

/* Inserts n ordered by n->key, then by cmp(existing, arg) where arg
 * describes n's key bytes; equal entries go to the right. */
void zg_rbtree_insert_keyed(zg_rbtree_t *t, zg_rbtree_node_t *n, zg_rbtree_cmp_pt cmp,
                            const void *arg);

/* Removes n, which must be in t. */
void zg_rbtree_delete(zg_rbtree_t *t, zg_rbtree_node_t *n);

/* insert_pt by key only; equal keys go to the right. */
void zg_rbtree_insert_value(zg_rbtree_node_t *root, zg_rbtree_node_t *n,
                            zg_rbtree_node_t *sentinel);

/* Smallest node, NULL if empty. */
zg_rbtree_node_t *zg_rbtree_min(zg_rbtree_t *t);

/* In-order successor of n, NULL after the last. */
zg_rbtree_node_t *zg_rbtree_next(zg_rbtree_t *t, zg_rbtree_node_t *n);

/* A node with this key for which cmp(node, arg) == 0, NULL if none.
 * cmp NULL matches the first node found with the key. */
zg_rbtree_node_t *zg_rbtree_lookup(zg_rbtree_t *t, zg_rbtree_key_t key,
                                   zg_rbtree_cmp_pt cmp, const void *arg);

/* Returns ZG_OK if t is a valid red-black tree: in-order keys
 * non-decreasing, root and sentinel black, no red node with a red child,
 * equal black heights, parent links right.  ZG_ERROR otherwise. */
int zg_rbtree_validate(zg_rbtree_t *t);

#endif
