/* zg_rbtree.c — intrusive red-black tree. */
#include "zg_rbtree.h"

void zg_rbtree_init(zg_rbtree_t *t, zg_rbtree_node_t *sentinel, zg_rbtree_insert_pt insert)
{
    zg_rbt_black(sentinel);
    sentinel->left = sentinel->right = sentinel->parent = NULL;
    sentinel->key = 0;
    t->root = sentinel;
    t->sentinel = sentinel;
    t->insert = insert;
}

static void zg_rbtree_rotate_left(zg_rbtree_t *t, zg_rbtree_node_t *x)
{
    zg_rbtree_node_t *s = t->sentinel, *y = x->right;

    x->right = y->left;
    if (y->left != s) {
        y->left->parent = x;
    }
    y->parent = x->parent;
    if (x == t->root) {
        t->root = y;
    } else if (x == x->parent->left) {
        x->parent->left = y;
    } else {
        x->parent->right = y;
    }
    y->left = x;
    x->parent = y;
}

static void zg_rbtree_rotate_right(zg_rbtree_t *t, zg_rbtree_node_t *x)
{
    zg_rbtree_node_t *s = t->sentinel, *y = x->left;

    x->left = y->right;
    if (y->right != s) {
        y->right->parent = x;
    }
    y->parent = x->parent;
    if (x == t->root) {
        t->root = y;
    } else if (x == x->parent->right) {
        x->parent->right = y;
    } else {
        x->parent->left = y;
    }
    y->right = x;
    x->parent = y;
}

/* n is a red leaf just placed below the root */
static void zg_rbtree_insert_fixup(zg_rbtree_t *t, zg_rbtree_node_t *n)
{
    zg_rbtree_node_t *u, *g;

    while (n != t->root && zg_rbt_is_red(n->parent)) {
        g = n->parent->parent;
        if (n->parent == g->left) {
            u = g->right;
            if (zg_rbt_is_red(u)) {
                zg_rbt_black(n->parent);
                zg_rbt_black(u);
                zg_rbt_red(g);
                n = g;
                continue;
            }
            if (n == n->parent->right) {
                n = n->parent;
                zg_rbtree_rotate_left(t, n);
            }
            zg_rbt_black(n->parent);
            zg_rbt_red(g);
            zg_rbtree_rotate_right(t, g);
        } else {
            u = g->left;
            if (zg_rbt_is_red(u)) {
                zg_rbt_black(n->parent);
                zg_rbt_black(u);
                zg_rbt_red(g);
                n = g;
                continue;
            }
            if (n == n->parent->left) {
                n = n->parent;
                zg_rbtree_rotate_right(t, n);
            }
            zg_rbt_black(n->parent);
            zg_rbt_red(g);
            zg_rbtree_rotate_left(t, g);
        }
    }
    zg_rbt_black(t->root);
}

void zg_rbtree_insert(zg_rbtree_t *t, zg_rbtree_node_t *n)
{
    zg_rbtree_node_t *s = t->sentinel;

    if (t->root == s) {
        n->parent = NULL;
        n->left = n->right = s;
        zg_rbt_black(n);
        t->root = n;
        return;
    }
    t->insert(t->root, n, s);
    zg_rbtree_insert_fixup(t, n);
}

void zg_rbtree_insert_value(zg_rbtree_node_t *root, zg_rbtree_node_t *n,
                            zg_rbtree_node_t *sentinel)
{
    zg_rbtree_node_t **link, *at = root;

    for (;;) {
        link = n->key < at->key ? &at->left : &at->right;
        if (*link == sentinel) {
            break;
        }
        at = *link;
    }
    *link = n;
    n->parent = at;
    n->left = n->right = sentinel;
    zg_rbt_red(n);
}

void zg_rbtree_insert_keyed(zg_rbtree_t *t, zg_rbtree_node_t *n, zg_rbtree_cmp_pt cmp,
                            const void *arg)
{
    zg_rbtree_node_t *s = t->sentinel, **link, *at = t->root;

    if (at == s) {
        zg_rbtree_insert(t, n);
        return;
    }
    for (;;) {
        if (n->key != at->key) {
            link = n->key < at->key ? &at->left : &at->right;
        } else {
            link = cmp(at, arg) > 0 ? &at->left : &at->right;
        }
        if (*link == s) {
            break;
        }
        at = *link;
    }
    *link = n;
    n->parent = at;
    n->left = n->right = s;
    zg_rbt_red(n);
    zg_rbtree_insert_fixup(t, n);
}

static zg_rbtree_node_t *zg_rbtree_min_of(zg_rbtree_node_t *n, zg_rbtree_node_t *s)
{
    while (n->left != s) {
        n = n->left;
    }
    return n;
}

/* puts v in u's place (v may be the sentinel; its parent is then set) */
static void zg_rbtree_transplant(zg_rbtree_t *t, zg_rbtree_node_t *u, zg_rbtree_node_t *v)
{
    if (u == t->root) {
        t->root = v;
    } else if (u == u->parent->left) {
        u->parent->left = v;
    } else {
        u->parent->right = v;
    }
    v->parent = u->parent;
}

void zg_rbtree_delete(zg_rbtree_t *t, zg_rbtree_node_t *n)
{
    zg_rbtree_node_t *s = t->sentinel, *x, *y, *w;
    unsigned char y_red;

    y = n;
    y_red = zg_rbt_is_red(y);
    if (n->left == s) {
        x = n->right;
        zg_rbtree_transplant(t, n, x);
    } else if (n->right == s) {
        x = n->left;
        zg_rbtree_transplant(t, n, x);
    } else {
        y = zg_rbtree_min_of(n->right, s);
        y_red = zg_rbt_is_red(y);
        x = y->right;
        if (y->parent == n) {
            x->parent = y;
        } else {
            zg_rbtree_transplant(t, y, x);
            y->right = n->right;
            y->right->parent = y;
        }
        zg_rbtree_transplant(t, n, y);
        y->left = n->left;
        y->left->parent = y;
        y->color = n->color;
    }

    n->left = n->right = n->parent = NULL;
    n->key = 0;

    if (t->root == s) {
        s->parent = NULL;
        return;
    }
    if (t->root == x) {
        x->parent = NULL;
    }
    if (y_red) {
        s->parent = NULL;
        return;
    }

    /* x carries an extra black */
    while (x != t->root && zg_rbt_is_black(x)) {
        if (x == x->parent->left) {
            w = x->parent->right;
            if (zg_rbt_is_red(w)) {
                zg_rbt_black(w);
                zg_rbt_red(x->parent);
                zg_rbtree_rotate_left(t, x->parent);
                w = x->parent->right;
            }
            if (zg_rbt_is_black(w->left) && zg_rbt_is_black(w->right)) {
                zg_rbt_red(w);
                x = x->parent;
                continue;
            }
            if (zg_rbt_is_black(w->right)) {
                zg_rbt_black(w->left);
                zg_rbt_red(w);
                zg_rbtree_rotate_right(t, w);
                w = x->parent->right;
            }
            w->color = x->parent->color;
            zg_rbt_black(x->parent);
            zg_rbt_black(w->right);
            zg_rbtree_rotate_left(t, x->parent);
            x = t->root;
        } else {
            w = x->parent->left;
            if (zg_rbt_is_red(w)) {
                zg_rbt_black(w);
                zg_rbt_red(x->parent);
                zg_rbtree_rotate_right(t, x->parent);
                w = x->parent->left;
            }
            if (zg_rbt_is_black(w->left) && zg_rbt_is_black(w->right)) {
                zg_rbt_red(w);
                x = x->parent;
                continue;
            }
            if (zg_rbt_is_black(w->left)) {
                zg_rbt_black(w->right);
                zg_rbt_red(w);
                zg_rbtree_rotate_left(t, w);
                w = x->parent->left;
            }
            w->color = x->parent->color;
            zg_rbt_black(x->parent);
            zg_rbt_black(w->left);
            zg_rbtree_rotate_right(t, x->parent);
            x = t->root;
        }
    }
    zg_rbt_black(x);
    s->parent = NULL;
}

zg_rbtree_node_t *zg_rbtree_min(zg_rbtree_t *t)
{
    if (t->root == t->sentinel) {
        return NULL;
    }
    return zg_rbtree_min_of(t->root, t->sentinel);
}

zg_rbtree_node_t *zg_rbtree_next(zg_rbtree_t *t, zg_rbtree_node_t *n)
{
    zg_rbtree_node_t *s = t->sentinel, *p;

    if (n->right != s) {
        return zg_rbtree_min_of(n->right, s);
    }
    for (;;) {
        p = n->parent;
        if (n == t->root || p == NULL) {
            return NULL;
        }
        if (n == p->left) {
            return p;
        }
        n = p;
    }
}

zg_rbtree_node_t *zg_rbtree_lookup(zg_rbtree_t *t, zg_rbtree_key_t key,
                                   zg_rbtree_cmp_pt cmp, const void *arg)
{
    zg_rbtree_node_t *s = t->sentinel, *n = t->root;
    int rc;

    while (n != s) {
        if (key != n->key) {
            n = key < n->key ? n->left : n->right;
            continue;
        }
        if (cmp == NULL) {
            return n;
        }
        rc = cmp(n, arg);
        if (rc == 0) {
            return n;
        }
        n = rc > 0 ? n->left : n->right;
    }
    return NULL;
}

/* black height of the subtree at n, -1 if invalid; keys within [lo, hi] */
static int zg_rbtree_check(zg_rbtree_t *t, zg_rbtree_node_t *n, uint64_t lo, uint64_t hi,
                           size_t depth)
{
    zg_rbtree_node_t *s = t->sentinel;
    int l, r;

    if (n == s) {
        return 1;
    }
    if (depth > 128 || n == NULL || n->key < lo || n->key > hi) {
        return -1;
    }
    if (n->left == NULL || n->right == NULL
        || (n->left != s && n->left->parent != n)
        || (n->right != s && n->right->parent != n)) {
        return -1;
    }
    if (zg_rbt_is_red(n) && (zg_rbt_is_red(n->left) || zg_rbt_is_red(n->right))) {
        return -1;
    }
    l = zg_rbtree_check(t, n->left, lo, n->key, depth + 1);
    r = zg_rbtree_check(t, n->right, n->key, hi, depth + 1);
    if (l < 0 || r < 0 || l != r) {
        return -1;
    }
    return l + zg_rbt_is_black(n);
}

int zg_rbtree_validate(zg_rbtree_t *t)
{
    zg_rbtree_node_t *s = t->sentinel;

    if (s == NULL || zg_rbt_is_red(s) || t->root == NULL) {
        return ZG_ERROR;
    }
    if (t->root == s) {
        return ZG_OK;
    }
    if (zg_rbt_is_red(t->root) || t->root->parent != NULL) {
        return ZG_ERROR;
    }
    return zg_rbtree_check(t, t->root, 0, UINT32_MAX, 0) < 0 ? ZG_ERROR : ZG_OK;
}
